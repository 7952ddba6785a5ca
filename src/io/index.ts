// io/: reading and writing tensor files (safetensors, npy, PyTorch .pth). Names are returned exactly as the files
// have them; matching them to a model's parameters is the caller's business (io/ never imports nn/ or models/).

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
export {
  parsePth,
  readPth,
  readPthSync,
  extractStateDict,
  PthStorage,
  STATE_DICT_KEYS,
  PTH_GLOBALS,
  PTH_MAX_COMPRESSED_RECORD,
  PTH_MAX_ELEMENTS,
  type PthFile,
  type TorchDType,
} from './pth.js';
export { serializePth, writePthSync } from './pth-write.js';
export { unpickle, pyTuple, isPyTuple, pyState, PyGlobal, MAX_PICKLE_DEPTH, type UnpickleOptions } from './pickle.js';
export type { ZipWriteOptions } from './zip.js';
export {
  downloadUrlToFile,
  loadStateDictFromUrl,
  hfHubDownload,
  torchHubDir,
  hfHubCacheDir,
  hashPrefixFromFileName,
  DownloadError,
  type DownloadOptions,
  type LoadFromUrlOptions,
  type HfDownloadOptions,
} from './hub.js';
