/** Sizes of the SDK bundle in bytes. */
export interface SdkSize {
  readonly bundleBytes: number;
  readonly minifiedBytes: number;
  readonly gzipBytes: number;
}
/** Bundles and minifies `entry` (default: the built SDK) and returns its sizes in bytes. */
export function measureSize(entry?: string): Promise<SdkSize>;
