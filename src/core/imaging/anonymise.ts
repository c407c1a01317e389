/**
 * DICOM de-identification after the PS3.15 Annex E Basic Application Level Confidentiality
 * Profile, for the attributes that occur in radiography objects.
 *
 * Actions (Table E.1-1 codes): Z = keep the element, empty; X = remove; U = replace a UID with a
 * salted, deterministic one (so studies and series still group after anonymisation); private
 * groups, curves and overlay data are removed; sequences are processed recursively.
 * The Patient ID is replaced by a salted pseudonym (`patientHash`) so that patient-level
 * train/validation splits stay possible. Burned-in text cannot be removed here: when the file
 * says `BurnedInAnnotation = YES` a warning is returned.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';
import { dcmjsTagNamesToEmpty, DicomMetaDictionary, readDicomDict, writeDicomDict } from './dcmjs-io.js';
import type { DcmjsDataset, DcmjsElement } from './dcmjs-io.js';
import { isDicom } from './dicom.js';

export interface AnonymiseOptions {
  /** Secret mixed into the patient pseudonym and the replacement UIDs. At least 8 characters. */
  salt: string;
  /**
   * PS3.15 "Retain Patient Characteristics Option": keep Patient's Sex, Age, Size and Weight
   * (useful for fairness monitoring). Default false: they are blanked/removed as in the basic profile.
   */
  retainPatientCharacteristics?: boolean;
  /** Also return the original patient/study context (`original`), in memory only. */
  keepOriginal?: boolean;
}

export interface AnonymiseResult {
  /** A valid Part 10 file with the identifying values removed. */
  buffer: Buffer;
  /** `hashPatientId(salt, PatientID)`, or null when the file had no Patient ID. Also written as the new Patient ID. */
  patientHash: string | null;
  /** Attributes removed or emptied, as `'Keyword (gggg,eeee)'`; private tags as `'private (gggg,eeee)'`. Sorted, unique. */
  removedTags: string[];
  /** How many UID values were replaced. */
  replacedUids: number;
  /** Things a human should check, e.g. burned-in annotation. */
  warnings: string[];
  /** The instance's identity after de-identification (replaced UIDs): what the platform may keep. */
  uids: DicomInstanceUids;
  /**
   * The identifying context before de-identification, for a result sent straight back to the
   * sender (auto-predict): never to be stored or logged. Only with `keepOriginal`.
   */
  original?: OriginalDicomContext;
}

/** Study / series / instance identity of one DICOM instance. */
export interface DicomInstanceUids {
  studyUid: string | null;
  seriesUid: string | null;
  sopInstanceUid: string | null;
  sopClassUid: string | null;
  modality: string | null;
}

/** The patient and study attributes a result object must repeat to land in the sender's study. */
export interface OriginalDicomContext extends DicomInstanceUids {
  patientName: string | null;
  patientId: string | null;
  patientBirthDate: string | null;
  patientSex: string | null;
  studyDate: string | null;
  studyTime: string | null;
  studyId: string | null;
  accessionNumber: string | null;
  referringPhysicianName: string | null;
}

type Action = 'Z' | 'X';

/** Attribute keyword and basic-profile action, by tag. */
const PROFILE: Readonly<Record<string, [string, Action]>> = {
  '00080012': ['InstanceCreationDate', 'X'],
  '00080013': ['InstanceCreationTime', 'X'],
  '00080014': ['InstanceCreatorUID', 'X'],
  '00080020': ['StudyDate', 'Z'],
  '00080021': ['SeriesDate', 'X'],
  '00080022': ['AcquisitionDate', 'X'],
  '00080023': ['ContentDate', 'Z'],
  '0008002A': ['AcquisitionDateTime', 'X'],
  '00080030': ['StudyTime', 'Z'],
  '00080031': ['SeriesTime', 'X'],
  '00080032': ['AcquisitionTime', 'X'],
  '00080033': ['ContentTime', 'Z'],
  '00080050': ['AccessionNumber', 'Z'],
  '00080080': ['InstitutionName', 'X'],
  '00080081': ['InstitutionAddress', 'X'],
  '00080082': ['InstitutionCodeSequence', 'X'],
  '00080090': ['ReferringPhysicianName', 'Z'],
  '00080092': ['ReferringPhysicianAddress', 'X'],
  '00080094': ['ReferringPhysicianTelephoneNumbers', 'X'],
  '00080096': ['ReferringPhysicianIdentificationSequence', 'X'],
  '0008009C': ['ConsultingPhysicianName', 'X'],
  '00080201': ['TimezoneOffsetFromUTC', 'X'],
  '00081010': ['StationName', 'X'],
  '00081030': ['StudyDescription', 'X'],
  '0008103E': ['SeriesDescription', 'X'],
  '00081040': ['InstitutionalDepartmentName', 'X'],
  '00081048': ['PhysiciansOfRecord', 'X'],
  '00081049': ['PhysiciansOfRecordIdentificationSequence', 'X'],
  '00081050': ['PerformingPhysicianName', 'X'],
  '00081052': ['PerformingPhysicianIdentificationSequence', 'X'],
  '00081060': ['NameOfPhysiciansReadingStudy', 'X'],
  '00081062': ['PhysiciansReadingStudyIdentificationSequence', 'X'],
  '00081070': ['OperatorsName', 'X'],
  '00081072': ['OperatorIdentificationSequence', 'X'],
  '00081080': ['AdmittingDiagnosesDescription', 'X'],
  '00081084': ['AdmittingDiagnosesCodeSequence', 'X'],
  '00081110': ['ReferencedStudySequence', 'X'],
  '00081111': ['ReferencedPerformedProcedureStepSequence', 'X'],
  '00081120': ['ReferencedPatientSequence', 'X'],
  '00082111': ['DerivationDescription', 'X'],
  '00100010': ['PatientName', 'Z'],
  '00100020': ['PatientID', 'Z'],
  '00100021': ['IssuerOfPatientID', 'X'],
  '00100030': ['PatientBirthDate', 'Z'],
  '00100032': ['PatientBirthTime', 'X'],
  '00100040': ['PatientSex', 'Z'],
  '00100050': ['PatientInsurancePlanCodeSequence', 'X'],
  '00101000': ['OtherPatientIDs', 'X'],
  '00101001': ['OtherPatientNames', 'X'],
  '00101002': ['OtherPatientIDsSequence', 'X'],
  '00101005': ['PatientBirthName', 'X'],
  '00101010': ['PatientAge', 'X'],
  '00101020': ['PatientSize', 'X'],
  '00101030': ['PatientWeight', 'X'],
  '00101040': ['PatientAddress', 'X'],
  '00101060': ['PatientMotherBirthName', 'X'],
  '00101080': ['MilitaryRank', 'X'],
  '00101081': ['BranchOfService', 'X'],
  '00101090': ['MedicalRecordLocator', 'X'],
  '00102150': ['CountryOfResidence', 'X'],
  '00102152': ['RegionOfResidence', 'X'],
  '00102154': ['PatientTelephoneNumbers', 'X'],
  '00102160': ['EthnicGroup', 'X'],
  '00102180': ['Occupation', 'X'],
  '001021B0': ['AdditionalPatientHistory', 'X'],
  '001021F0': ['PatientReligiousPreference', 'X'],
  '00102297': ['ResponsiblePerson', 'X'],
  '00102299': ['ResponsibleOrganization', 'X'],
  '00104000': ['PatientComments', 'X'],
  '00181000': ['DeviceSerialNumber', 'X'],
  '00181004': ['PlateID', 'X'],
  '00181005': ['GeneratorID', 'X'],
  '00181007': ['CassetteID', 'X'],
  '00181008': ['GantryID', 'X'],
  '00181030': ['ProtocolName', 'X'],
  '00181400': ['AcquisitionDeviceProcessingDescription', 'X'],
  '0018700A': ['DetectorID', 'X'],
  '00200010': ['StudyID', 'Z'],
  '00204000': ['ImageComments', 'X'],
  '00321032': ['RequestingPhysician', 'X'],
  '00321033': ['RequestingService', 'X'],
  '00321060': ['RequestedProcedureDescription', 'X'],
  '00380010': ['AdmissionID', 'X'],
  '00380300': ['CurrentPatientLocation', 'X'],
  '00380500': ['PatientState', 'X'],
  '00400006': ['ScheduledPerformingPhysicianName', 'X'],
  '00400241': ['PerformedStationAETitle', 'X'],
  '00400242': ['PerformedStationName', 'X'],
  '00400243': ['PerformedLocation', 'X'],
  '00400244': ['PerformedProcedureStepStartDate', 'X'],
  '00400245': ['PerformedProcedureStepStartTime', 'X'],
  '00400250': ['PerformedProcedureStepEndDate', 'X'],
  '00400251': ['PerformedProcedureStepEndTime', 'X'],
  '00400253': ['PerformedProcedureStepID', 'X'],
  '00400254': ['PerformedProcedureStepDescription', 'X'],
  '00400275': ['RequestAttributesSequence', 'X'],
  '00401001': ['RequestedProcedureID', 'X'],
  '00402008': ['OrderEnteredBy', 'X'],
  '00402009': ['OrderEntererLocation', 'X'],
  '00402010': ['OrderCallbackPhoneNumber', 'X'],
  '00402016': ['PlacerOrderNumberImagingServiceRequest', 'X'],
  '00402017': ['FillerOrderNumberImagingServiceRequest', 'X'],
  '0040A123': ['PersonName', 'X'],
  '0040A160': ['TextValue', 'X'],
  '0040A730': ['ContentSequence', 'X'],
  '04000561': ['OriginalAttributesSequence', 'X'],
  '0400A402': ['DigitalSignaturesSequence', 'X'],
  '00020016': ['SourceApplicationEntityTitle', 'X'],
  '00020017': ['SendingApplicationEntityTitle', 'X'],
  '00020018': ['ReceivingApplicationEntityTitle', 'X'],
  '00020100': ['PrivateInformationCreatorUID', 'X'],
  '00020102': ['PrivateInformation', 'X'],
};

/**
 * What dcmjs's own anonymiser empties (its PS3.15 list, `anonymizer.getTagsNameToEmpty()`) that the
 * table above does not name: removed as well, so this profile is at least dcmjs's. Names dcmjs's
 * dictionary no longer resolves are skipped; UIDs keep their salted replacement.
 */
const DCMJS_PROFILE: Readonly<Record<string, [string, Action]>> = Object.freeze(
  Object.fromEntries(
    dcmjsTagNamesToEmpty().flatMap((name): [string, [string, Action]][] => {
      const entry = DicomMetaDictionary.nameMap[name];
      if (!entry) return [];
      const tag = entry.tag.replace(/[(),]/g, '').toUpperCase();
      return PROFILE[tag] || entry.vr === 'UI' ? [] : [[tag, [name, 'X']]];
    }),
  ),
);

/** The whole profile: the radiography table, then dcmjs's list. */
const FULL_PROFILE: Readonly<Record<string, [string, Action]>> = Object.freeze({ ...DCMJS_PROFILE, ...PROFILE });

/** Kept under the Retain Patient Characteristics Option. */
const PATIENT_CHARACTERISTICS = new Set(['00100040', '00101010', '00101020', '00101030']);

/** UIDs that name classes or syntaxes, not instances: never replaced. */
const CLASS_UID_TAGS = new Set(['00020002', '00020010', '00020012', '00080016', '00081150', '0008001A', '00080062', '00041510', '00041512']);

export const DEIDENTIFICATION_METHOD = 'DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile (xray-mlops anonymiseDicom v1)';

/**
 * The salted patient pseudonym used everywhere a patient must be grouped without being named:
 * the first 16 hex characters of sha256(salt + patientId).
 */
export function hashPatientId(salt: string, patientId: string): string {
  return createHash('sha256').update(salt + patientId).digest('hex').slice(0, 16);
}

/** A deterministic replacement UID under the 2.25 (UUID-derived) root. */
export function hashUid(salt: string, uid: string): string {
  const hex = createHash('sha256').update(`${salt}\u0000uid\u0000${uid}`).digest('hex').slice(0, 30);
  return `2.25.${BigInt(`0x${hex}`).toString()}`;
}

function label(tag: string): string {
  const punct = `(${tag.slice(0, 4)},${tag.slice(4)})`;
  const known = FULL_PROFILE[tag];
  if (known) return `${known[0]} ${punct}`;
  return `${isPrivate(tag) ? 'private' : 'tag'} ${punct}`;
}

function isPrivate(tag: string): boolean {
  return parseInt(tag.slice(0, 4), 16) % 2 === 1;
}

/** Curve data (50xx) and overlay data/comments (60xx,3000 / 60xx,4000) may hold drawn text. */
function isCurveOrOverlayText(tag: string): boolean {
  const group = parseInt(tag.slice(0, 4), 16);
  const element = tag.slice(4);
  if (group >= 0x5000 && group <= 0x50ff) return true;
  return group >= 0x6000 && group <= 0x60ff && group % 2 === 0 && (element === '3000' || element === '4000');
}

function firstString(el: DcmjsElement | undefined): string | null {
  const v = el?.Value?.[0];
  if (typeof v === 'string') return v.trim() || null;
  if (v !== null && typeof v === 'object' && 'Alphabetic' in v) return String((v as { Alphabetic: unknown }).Alphabetic).trim() || null;
  return v === undefined || v === null ? null : String(v).trim() || null;
}

interface Context {
  salt: string;
  retain: boolean;
  removed: Set<string>;
  uidCount: number;
}

function clean(dataset: DcmjsDataset, ctx: Context): void {
  for (const tag of Object.keys(dataset)) {
    const upper = tag.toUpperCase();
    const el = dataset[tag]!;
    if (upper.endsWith('0000') && !upper.startsWith('0002')) {
      delete dataset[tag]; // group lengths are deprecated and would be wrong after edits
      continue;
    }
    if (isPrivate(upper) || isCurveOrOverlayText(upper)) {
      delete dataset[tag];
      ctx.removed.add(label(upper));
      continue;
    }
    const rule = FULL_PROFILE[upper];
    if (rule && !(ctx.retain && PATIENT_CHARACTERISTICS.has(upper))) {
      if (rule[1] === 'X') delete dataset[tag];
      else dataset[tag] = { vr: el.vr, Value: [] };
      ctx.removed.add(label(upper));
      continue;
    }
    if (el.vr === 'UI' && !CLASS_UID_TAGS.has(upper) && Array.isArray(el.Value)) {
      const values = el.Value.map((v) => {
        const uid = typeof v === 'string' ? v.trim() : '';
        if (uid === '' || uid.startsWith('1.2.840.10008.')) return uid;
        ctx.uidCount++;
        return hashUid(ctx.salt, uid);
      });
      dataset[tag] = { vr: 'UI', Value: values };
      continue;
    }
    if (el.vr === 'SQ' && Array.isArray(el.Value)) {
      for (const item of el.Value) {
        if (item && typeof item === 'object') clean(item as DcmjsDataset, ctx);
      }
    }
  }
}

function code(value: string, meaning: string): DcmjsDataset {
  return {
    '00080100': { vr: 'SH', Value: [value] },
    '00080102': { vr: 'SH', Value: ['DCM'] },
    '00080104': { vr: 'LO', Value: [meaning] },
  };
}

/**
 * De-identifies a DICOM file. Pixel data and transfer syntax are unchanged (Implicit VR files
 * are rewritten as Explicit VR Little Endian, which carries the same pixel bytes).
 *
 * @throws AppError INVALID_INPUT (empty input or salt shorter than 8 characters),
 *   UNPROCESSABLE (not readable as DICOM).
 * @example
 * const { buffer, patientHash } = anonymiseDicom(upload, { salt: config.anonymisationSalt });
 */
export function anonymiseDicom(buf: Uint8Array, options: AnonymiseOptions): AnonymiseResult {
  if (typeof options?.salt !== 'string' || options.salt.length < 8) {
    throw new AppError('INVALID_INPUT', 'anonymiseDicom needs a salt of at least 8 characters');
  }
  if (!buf || buf.length === 0) throw new AppError('INVALID_INPUT', 'DICOM buffer is empty');
  if (!isDicom(buf) || buf.length < 132 || Buffer.from(buf.subarray(128, 132)).toString('latin1') !== 'DICM') {
    throw new AppError('UNPROCESSABLE', 'anonymiseDicom needs a DICOM Part 10 file (128-byte preamble and DICM)');
  }
  const file = readDicomDict(buf);
  const { meta, dict } = file;
  const patientId = firstString(dict['00100020']);
  const patientHash = patientId === null ? null : hashPatientId(options.salt, patientId);
  const burnedIn = firstString(dict['00280301']);
  const original = options.keepOriginal === true ? originalContext(dict) : undefined;

  const ctx: Context = { salt: options.salt, retain: options.retainPatientCharacteristics === true, removed: new Set(), uidCount: 0 };
  clean(meta, ctx);
  clean(dict, ctx);

  if (patientHash !== null) dict['00100020'] = { vr: 'LO', Value: [patientHash] };
  dict['00120062'] = { vr: 'CS', Value: ['YES'] };
  dict['00120063'] = { vr: 'LO', Value: [DEIDENTIFICATION_METHOD] };
  const codes = [code('113100', 'Basic Application Confidentiality Profile')];
  if (ctx.retain) codes.push(code('113108', 'Retain Patient Characteristics Option'));
  dict['00120064'] = { vr: 'SQ', Value: codes };
  dict['00280303'] = { vr: 'CS', Value: ['REMOVED'] }; // Longitudinal Temporal Information Modified

  // Media Storage SOP Instance UID must match the (replaced) SOP Instance UID.
  const sopInstance = firstString(dict['00080018']);
  if (sopInstance) meta['00020003'] = { vr: 'UI', Value: [sopInstance] };
  // dcmjs writes implicit and deflated data sets as explicit VR little endian (it never deflates
  // on write), so the meta header must say so: a deflated label on plain bytes does not inflate.
  const syntax = firstString(meta['00020010']);
  if (syntax === '1.2.840.10008.1.2' || syntax === '1.2.840.10008.1.2.1.99') meta['00020010'] = { vr: 'UI', Value: ['1.2.840.10008.1.2.1'] };

  const warnings: string[] = [];
  if (burnedIn?.toUpperCase() === 'YES') {
    warnings.push('Burned In Annotation is YES: identifying text may be drawn into the pixels and was not removed');
  }

  let buffer: Buffer;
  try {
    buffer = writeDicomDict(meta, dict);
  } catch (err) {
    throw new AppError('UNPROCESSABLE', `Anonymised DICOM could not be written: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    buffer,
    patientHash,
    removedTags: [...ctx.removed].sort(),
    replacedUids: ctx.uidCount,
    warnings,
    uids: instanceUids(dict),
    ...(original ? { original } : {}),
  };
}

function instanceUids(dict: DcmjsDataset): DicomInstanceUids {
  return {
    studyUid: firstString(dict['0020000D']),
    seriesUid: firstString(dict['0020000E']),
    sopInstanceUid: firstString(dict['00080018']),
    sopClassUid: firstString(dict['00080016']),
    modality: firstString(dict['00080060']),
  };
}

function originalContext(dict: DcmjsDataset): OriginalDicomContext {
  return {
    ...instanceUids(dict),
    patientName: firstString(dict['00100010']),
    patientId: firstString(dict['00100020']),
    patientBirthDate: firstString(dict['00100030']),
    patientSex: firstString(dict['00100040']),
    studyDate: firstString(dict['00080020']),
    studyTime: firstString(dict['00080030']),
    studyId: firstString(dict['00200010']),
    accessionNumber: firstString(dict['00080050']),
    referringPhysicianName: firstString(dict['00080090']),
  };
}
