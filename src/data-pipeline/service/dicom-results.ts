/**
 * The DICOM objects auto-predict returns: an Enhanced SR with the model's finding (probability,
 * label, threshold, model name and version, "not for primary diagnosis") and a Secondary Capture
 * of the heatmap overlay. Both go into the study of the image they were computed from (same Study
 * Instance UID and patient module), in a new series each, and reference that image.
 * Built with dcmjs from values the platform made itself (no untrusted bytes are parsed here).
 */
import { randomUUID } from 'node:crypto';
import { denaturalize, writeDicomDict, type DcmjsDataset } from '../../core/imaging/dcmjs-io.js';
import type { DicomInstanceUids, OriginalDicomContext } from '../../core/imaging/anonymise.js';

export const ENHANCED_SR_STORAGE = '1.2.840.10008.5.1.4.1.1.88.22';
export const SECONDARY_CAPTURE_STORAGE = '1.2.840.10008.5.1.4.1.1.7';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLEMENTATION_CLASS_UID = '2.25.163387279374962347542713939145386540547';
export const NOT_FOR_DIAGNOSIS =
  'NOT FOR PRIMARY DIAGNOSIS. Research and decision-support output of xray-mlops (not a medical device); a qualified reader must review the images.';

/** A fresh UID under 2.25 (UUID-derived, PS3.5 B.2). */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

/** The study and image a result belongs to: the sender's (kept in memory) or the stored, de-identified one. */
export type SourceContext = Omit<OriginalDicomContext, keyof DicomInstanceUids> & {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
};

export interface PredictionSummary {
  probability: number;
  label: 'PNEUMONIA' | 'NORMAL';
  threshold: number;
  modelName: string;
  modelVersion: string;
}

export interface ResultObject {
  sopClassUid: string;
  sopInstanceUid: string;
  seriesUid: string;
  bytes: Buffer;
}

function code(value: string, scheme: string, meaning: string): Record<string, string> {
  return { CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning };
}

function dicomDateTime(d: Date): { date: string; time: string } {
  const iso = d.toISOString();
  return { date: iso.slice(0, 10).replace(/-/g, ''), time: iso.slice(11, 19).replace(/:/g, '') };
}

/** Patient + General Study module values, repeated from the source. */
function patientAndStudy(src: SourceContext): Record<string, unknown> {
  return {
    PatientName: src.patientName ?? '',
    PatientID: src.patientId ?? '',
    PatientBirthDate: src.patientBirthDate ?? '',
    PatientSex: src.patientSex ?? '',
    StudyInstanceUID: src.studyUid,
    StudyDate: src.studyDate ?? '',
    StudyTime: src.studyTime ?? '',
    ReferringPhysicianName: src.referringPhysicianName ?? '',
    StudyID: src.studyId ?? '',
    AccessionNumber: src.accessionNumber ?? '',
  };
}

function partTen(sopClassUid: string, sopInstanceUid: string, natural: Record<string, unknown>, pixel?: { data: Uint8Array }): Buffer {
  const dict: DcmjsDataset = denaturalize(natural);
  if (pixel) {
    const value = new Uint8Array(pixel.data.length + (pixel.data.length % 2));
    value.set(pixel.data);
    dict['7FE00010'] = { vr: 'OB', Value: [value.buffer] };
  }
  const meta: DcmjsDataset = {
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020002': { vr: 'UI', Value: [sopClassUid] },
    '00020003': { vr: 'UI', Value: [sopInstanceUid] },
    '00020010': { vr: 'UI', Value: [EXPLICIT_LE] },
    '00020012': { vr: 'UI', Value: [IMPLEMENTATION_CLASS_UID] },
    '00020013': { vr: 'SH', Value: ['XRAY_MLOPS'] },
  };
  return writeDicomDict(meta, dict);
}

/** PS3.3 A.35.2 Enhanced SR: the finding as a small content tree under a "Diagnostic imaging report" container. */
export function buildResultSr(src: SourceContext, p: PredictionSummary, opts: { now?: Date; softwareVersion?: string } = {}): ResultObject {
  const sopInstanceUid = newUid();
  const seriesUid = newUid();
  const { date, time } = dicomDateTime(opts.now ?? new Date());
  const num = (value: string, scheme: string, meaning: string, n: number) => ({
    RelationshipType: 'CONTAINS',
    ValueType: 'NUM',
    ConceptNameCodeSequence: [code(value, scheme, meaning)],
    MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [code('1', 'UCUM', 'no units')], NumericValue: n.toFixed(6) }],
  });
  const text = (value: string, scheme: string, meaning: string, t: string) => ({
    RelationshipType: 'CONTAINS',
    ValueType: 'TEXT',
    ConceptNameCodeSequence: [code(value, scheme, meaning)],
    TextValue: t,
  });
  const natural: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: ENHANCED_SR_STORAGE,
    SOPInstanceUID: sopInstanceUid,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    ...patientAndStudy(src),
    Modality: 'SR',
    SeriesInstanceUID: seriesUid,
    SeriesNumber: 9901,
    SeriesDescription: 'xray-mlops AI result (not for primary diagnosis)',
    ReferencedPerformedProcedureStepSequence: [],
    Manufacturer: 'xray-mlops',
    ManufacturerModelName: 'xray-mlops',
    SoftwareVersions: opts.softwareVersion ?? '0.1.0',
    InstanceNumber: 1,
    ContentDate: date,
    ContentTime: time,
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: src.studyUid,
        ReferencedSeriesSequence: [
          { SeriesInstanceUID: src.seriesUid, ReferencedSOPSequence: [{ ReferencedSOPClassUID: src.sopClassUid, ReferencedSOPInstanceUID: src.sopInstanceUid }] },
        ],
      },
    ],
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [code('18748-4', 'LN', 'Diagnostic imaging report')],
    ContinuityOfContent: 'SEPARATE',
    ContentSequence: [
      text('121106', 'DCM', 'Comment', NOT_FOR_DIAGNOSIS),
      {
        RelationshipType: 'CONTAINS',
        ValueType: 'CODE',
        ConceptNameCodeSequence: [code('121071', 'DCM', 'Finding')],
        ConceptCodeSequence: [p.label === 'PNEUMONIA' ? code('233604007', 'SCT', 'Pneumonia') : code('17621005', 'SCT', 'Normal')],
      },
      num('XR-PROB', '99XRAY', 'Probability of pneumonia', p.probability),
      num('XR-THR', '99XRAY', 'Decision threshold', p.threshold),
      text('111001', 'DCM', 'Algorithm Name', p.modelName),
      text('111003', 'DCM', 'Algorithm Version', p.modelVersion),
      {
        RelationshipType: 'CONTAINS',
        ValueType: 'IMAGE',
        ConceptNameCodeSequence: [code('121112', 'DCM', 'Source of Measurement')],
        ReferencedSOPSequence: [{ ReferencedSOPClassUID: src.sopClassUid, ReferencedSOPInstanceUID: src.sopInstanceUid }],
      },
    ],
  };
  return { sopClassUid: ENHANCED_SR_STORAGE, sopInstanceUid, seriesUid, bytes: partTen(ENHANCED_SR_STORAGE, sopInstanceUid, natural) };
}

/** PS3.3 A.8.1 Secondary Capture: the heatmap overlay as 8-bit RGB, derived from the source image. */
export function buildHeatmapSc(
  src: SourceContext,
  p: PredictionSummary,
  rgb: { data: Uint8Array; width: number; height: number },
  opts: { now?: Date; softwareVersion?: string } = {},
): ResultObject {
  if (rgb.data.length !== rgb.width * rgb.height * 3) throw new Error(`heatmap is ${rgb.data.length} bytes, not ${rgb.width}x${rgb.height} RGB`);
  const sopInstanceUid = newUid();
  const seriesUid = newUid();
  const { date, time } = dicomDateTime(opts.now ?? new Date());
  const natural: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 192',
    ImageType: ['DERIVED', 'SECONDARY'],
    SOPClassUID: SECONDARY_CAPTURE_STORAGE,
    SOPInstanceUID: sopInstanceUid,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    ...patientAndStudy(src),
    Modality: 'OT',
    Laterality: '',
    SeriesInstanceUID: seriesUid,
    SeriesNumber: 9902,
    SeriesDescription: 'xray-mlops heatmap (not for primary diagnosis)',
    Manufacturer: 'xray-mlops',
    SoftwareVersions: opts.softwareVersion ?? '0.1.0',
    ConversionType: 'WSD',
    InstanceNumber: 1,
    PatientOrientation: '',
    ContentDate: date,
    ContentTime: time,
    DerivationDescription: `Heatmap of ${p.modelName} v${p.modelVersion}: P(pneumonia) ${p.probability.toFixed(3)}, threshold ${p.threshold.toFixed(3)}, ${p.label}. Not for primary diagnosis.`.slice(0, 1024),
    SourceImageSequence: [{ ReferencedSOPClassUID: src.sopClassUid, ReferencedSOPInstanceUID: src.sopInstanceUid }],
    BurnedInAnnotation: 'NO',
    LossyImageCompression: '00',
    ImageComments: NOT_FOR_DIAGNOSIS,
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: rgb.height,
    Columns: rgb.width,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
  };
  return {
    sopClassUid: SECONDARY_CAPTURE_STORAGE,
    sopInstanceUid,
    seriesUid,
    bytes: partTen(SECONDARY_CAPTURE_STORAGE, sopInstanceUid, natural, { data: rgb.data }),
  };
}
