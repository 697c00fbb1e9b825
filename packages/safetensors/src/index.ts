/**
 * @packageDocumentation
 * `@gumiho/safetensors`: safetensors reading and writing, and float32 weight stores.
 */
export {
  LayeredWeightStore,
  assembleSafetensors,
  MapWeightStore,
  decodeTensor,
  encodeSafetensors,
  f32ToBf16,
  parseSafetensorsHeader,
  readSafetensors,
  writeSafetensors,
} from './safetensors.js';
export type { RawSafetensorsEntry, SafetensorsEntry, SafetensorsHeader } from './safetensors.js';
