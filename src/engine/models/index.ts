// Normal-behaviour models: STIDE (baseline), a variable-order Markov model and its mixture with a
// small neural language model, model files with calibrated thresholds, the anomaly detector for
// the engine, and the ADFA-LD evaluation.
export { loadModel, saveModel, trainModelFile, trainProgramModel, checkModelAbi, AnomalyModel, ProgramModel, DEFAULTS, MODEL_FORMAT, MODEL_VERSION,
  type ModelFileData, type ProgramModelData, type TrainOptions, type TrainingSet, type Calibration } from './model.js';
export { createAnomalyDetector, type AnomalyDetectorOptions } from './detector.js';
export { MODEL_KINDS, type ModelKind, type TraceScore } from './scorers.js';
export { auc, rocCurve, farAtDr, drAtFar, rocSvg, type RocSeries, type RocPoint } from './roc.js';
export { evalAdfa, readAdfaFolder, type AdfaResult } from './adfa.js';
export { NeuralLM, NEURAL_DEFAULTS, type NeuralConfig } from './neural.js';
