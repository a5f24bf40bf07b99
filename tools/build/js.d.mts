// Types of tools/build/js.mjs, which is plain JavaScript because it runs before anything is compiled.
export declare const DIST: string;
export declare const ENTRY_POINTS: Record<string, string>;
export declare function isStale(): boolean;
export declare function compile(): Promise<number>;
export declare function ensureCompiled(): Promise<void>;
