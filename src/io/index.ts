// io/: reading and writing tensor files. Names are returned exactly as the files have them; matching them to a
// model's parameters is the caller's business (io/ never imports nn/ or models/).

export {
  parseSafetensors,
  readSafetensors,
  readSafetensorsSync,
  serializeSafetensors,
  writeSafetensorsSync,
  SAFETENSORS_MAX_HEADER,
  type SafetensorsFile,
  type SafetensorsWriteOptions,
} from './safetensors.js';
export { parseNpy, readNpySync, serializeNpy, writeNpySync, NPY_MAX_HEADER } from './npy.js';
export { TensorFileError } from './tensor-bytes.js';
