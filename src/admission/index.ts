export { createAdmission } from './admission.js';
export type { Admission, AdmissionDeps, AdmissionOptions, AdmissionSnapshot, AdmitRequest, Permit, Timers } from './admission.js';
export { createMemoryProbe, treeMemoryBytes } from './memory-probe.js';
export { saturationRatio } from './saturation.js';
export type { UploadFigures } from './saturation.js';
