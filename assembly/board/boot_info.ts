// The boot-info block the board writes before boot (docs/board-abi.md, "The boot-info block"). Little-endian.
// |0 magic|4 abi u16|6 size u16|8 role|12 index|16 ramBytes u64|24 ecamBase u64|32 ecamBusCount|36 flags|
// |40 pciMemBase u64|48 pciMemSize u64|56 msiAddress u64|64 name[32]|96 boardName[64]|
// |160 panicCode|164 panicTaskIndex|168 panicTaskName[16]|184 panicMessageLength|188 panicMessage[256]|
// |444 currentTaskIndex|448 muLocalBase u64|456 dmaBase u64|464 outboundWindowBase u64|472 outboundWindowSize u64|
// |480 sysctlBase u64|488 configRomBase u64|496 configRomBytes u32|500 reserved .. 512|

export const BOOT_INFO_MAGIC: u32 = 0x42504f49; // "IOPB"
export const BOOT_INFO_SIZE_BYTES: u32 = 512;
export const PROCESSOR_NAME_BYTES: u32 = 32;
export const BOARD_NAME_BYTES: u32 = 64;
export const PANIC_TASK_NAME_BYTES: u32 = 16;
export const PANIC_MESSAGE_BYTES: u32 = 256;
export const TASK_INDEX_NONE: u32 = 0xffff_ffff;

export enum Role {
  Host = 0, // faces the network: UMA, CTA, TTS, plus its own RTA and DDMs
  Storage = 1, // behind the bus: RTA and DDMs only
}

@inline export function bootInfoMagic(info: usize): u32 { return load<u32>(info, 0); }
@inline export function bootInfoAbiVersion(info: usize): u32 { return load<u16>(info, 4); }
@inline export function bootInfoSizeBytes(info: usize): u32 { return load<u16>(info, 6); }
@inline export function bootInfoRole(info: usize): u32 { return load<u32>(info, 8); }
@inline export function bootInfoProcessorIndex(info: usize): u32 { return load<u32>(info, 12); }
@inline export function bootInfoRamBytes(info: usize): u64 { return load<u64>(info, 16); }
@inline export function bootInfoEcamBase(info: usize): u64 { return load<u64>(info, 24); }
@inline export function bootInfoEcamBusCount(info: usize): u32 { return load<u32>(info, 32); }
@inline export function bootInfoFlags(info: usize): u32 { return load<u32>(info, 36); }
@inline export function bootInfoPciMemBase(info: usize): u64 { return load<u64>(info, 40); }
@inline export function bootInfoPciMemSize(info: usize): u64 { return load<u64>(info, 48); }
@inline export function bootInfoMsiAddress(info: usize): u64 { return load<u64>(info, 56); }
@inline export function bootInfoMuLocalBase(info: usize): u64 { return load<u64>(info, 448); }
@inline export function bootInfoDmaBase(info: usize): u64 { return load<u64>(info, 456); }
@inline export function bootInfoOutboundWindowBase(info: usize): u64 { return load<u64>(info, 464); }
@inline export function bootInfoOutboundWindowSize(info: usize): u64 { return load<u64>(info, 472); }
@inline export function bootInfoSysctlBase(info: usize): u64 { return load<u64>(info, 480); }
@inline export function bootInfoConfigRomBase(info: usize): u64 { return load<u64>(info, 488); }
@inline export function bootInfoConfigRomBytes(info: usize): u32 { return load<u32>(info, 496); }
@inline export function bootInfoNamePtr(info: usize): usize { return info + 64; }
@inline export function bootInfoBoardNamePtr(info: usize): usize { return info + 96; }

@inline export function bootInfoSetPanic(info: usize, code: u32, taskIndex: u32): void {
  store<u32>(info, code, 160);
  store<u32>(info, taskIndex, 164);
}
@inline export function bootInfoPanicTaskNamePtr(info: usize): usize { return info + 168; }
@inline export function bootInfoSetPanicMessageLength(info: usize, lengthBytes: u32): void {
  store<u32>(info, lengthBytes, 184);
}
@inline export function bootInfoPanicMessagePtr(info: usize): usize { return info + 188; }
@inline export function bootInfoSetCurrentTask(info: usize, taskIndex: u32): void { store<u32>(info, taskIndex, 444); }
