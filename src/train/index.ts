// Training and fine-tuning: the loop and evaluation (loop.ts), the tutorial's head swap / freezing / parameter groups
// (finetune.ts), checkpoints PyTorch loads with weights_only=True (checkpoint.ts), model descriptions a checkpoint
// carries (model-spec.ts), data / optimizer / schedule recipes (recipe.ts), metrics, curves and progress.
export { fit, evaluate, logitsOf, setFrozenBnEval, traceRows, type FitOptions, type FitResult, type EvalResult, type EvaluateOptions, type StepInfo, type CheckpointInfo, type Schedule, type LossFn } from './loop.js';
export { headOf, replaceHead, freezeBackbone, paramGroups, splitParameters, type HeadRef } from './finetune.js';
export {
  saveCheckpoint, loadCheckpoint, encodeFloats, decodeFloats, floatTensor, CHECKPOINT_FORMAT,
  type TrainCheckpoint, type EpochMetrics, type EpochState, type BestMetric,
} from './checkpoint.js';
export { makeSpec, buildSpecModel, inferSpec, loadWeightsInto, adaptInputConv, specFromCheckpoint, STEMS, type ModelSpec, type Stem, type SpecOptions } from '../models/model-spec.js';
export {
  dataRecipe, trainTransform, evalTransform, inferenceTransform, openSplit, limitDataset, makeOptimizer, makeScheduler, SCHEDULES,
  type DataRecipe, type OptimConfig, type ScheduleConfig, type ScheduleName,
} from './recipe.js';
export { ConfusionMatrix, formatConfusion, formatPerClass, writeMetricFiles } from './metrics.js';
export { curvesSvg, type CurveData } from './plot.js';
