// The data layer: image files to RGB pixels (image.ts, sharp), torchvision's transforms and ImageClassification
// preset (transforms.ts over resample.ts = PIL's resize and interpolate.ts = torch's), and transformers'
// ConvNextImageProcessor (hf-processor.ts). Imports only tensor/ (and node, sharp).
//
//   const img = await readImage('cat.jpg');                                  // like Image.open(...).convert('RGB')
//   const x = new ImageClassification(weights.transforms).forward(img);      // (3, 224, 224) float32

export {
  readImage, sniffImageFormat, loadSharp, checkRgbImage, isRgbImage, ImageDecodeError, SharpLoadError, MAX_IMAGE_PIXELS,
  type RgbImage, type ImageFormat, type ReadImageOptions,
} from './image.js';
export * as transforms from './transforms.js';
export {
  ImageClassification, imageClassification, IMAGENET_MEAN, IMAGENET_STD, type ImageClassificationOptions, type Interpolation,
} from './transforms.js';
export { ConvNextImageProcessor, hfCenterCrop, type ConvNextImageProcessorConfig } from './hf-processor.js';
export { pilResize, PIL_FILTER_CODES, type PilFilter } from './resample.js';
