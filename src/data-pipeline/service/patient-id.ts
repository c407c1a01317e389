/**
 * Patient ids from file names of the Kermany chest X-ray layout (Kermany et al., 2018):
 * - pneumonia images: `person123_bacteria_456.jpeg`, `person45_virus_98.jpeg` → `person123`, `person45`
 * - normal images: `IM-0117-0001.jpeg` → `IM-0117`; `NORMAL2-IM-0117-0001.jpeg` → `NORMAL2-IM-0117`
 *   (NORMAL2 is a second numbering series, so it stays part of the id); follow-up images such as
 *   `IM-0629-0001-0002.jpeg` belong to the same patient `IM-0629`.
 * Any other name gives null: an unknown patient is then treated as its own group.
 */
const PERSON = /^(person\d+)_/i;
const IM = /^((?:NORMAL2-)?IM-\d+)-\d+/i;

export function patientIdFromFileName(fileName: string): string | null {
  const base = fileName.split(/[\\/]/).pop() ?? '';
  const person = PERSON.exec(base);
  if (person) return person[1]!.toLowerCase();
  const im = IM.exec(base);
  if (im) return im[1]!.toUpperCase();
  return null;
}
