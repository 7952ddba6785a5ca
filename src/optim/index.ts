// Optimizers and learning-rate schedules (torch.optim's SGD, AdamW and lr_scheduler, PyTorch 1.13 semantics).
export { Optimizer, type ParamGroup, type ParamGroupInput, type ParamState, type OptimizerStateDict } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { AdamW, type AdamWOptions } from './adamw.js';
export { LRScheduler, StepLR, MultiStepLR, LinearLR, CosineAnnealingLR, OneCycleLR, SequentialLR, type OneCycleLROptions, type SchedulerState } from './lr-scheduler.js';
