// Types for native.mjs (plain JavaScript so that it runs before anything is compiled).
export declare const ARMHF_SYSROOT: string;
export declare const ARMHF_PACKAGES: string[];
export declare const ARMHF_QEMU_LIBC: string;
export declare function nativeBoardPath(arch?: "x86_64" | "armv7"): string;
export declare function qemuArmPrefix(): string[];
export declare function ensureArmhfSysroot(): Promise<void>;
export declare function buildNative(options?: { arm?: boolean; quiet?: boolean }): Promise<string>;
