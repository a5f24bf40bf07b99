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

// The fields' offsets, as drawn above (host/abi/boot_info.ts, BootInfoOffset, is the host's side).
const AT_MAGIC: usize = 0;
const AT_ABI_VERSION: usize = 4;
const AT_SIZE_BYTES: usize = 6;
const AT_ROLE: usize = 8;
const AT_PROCESSOR_INDEX: usize = 12;
const AT_RAM_BYTES: usize = 16;
const AT_ECAM_BASE: usize = 24;
const AT_ECAM_BUS_COUNT: usize = 32;
const AT_FLAGS: usize = 36;
const AT_PCI_MEM_BASE: usize = 40;
const AT_PCI_MEM_SIZE: usize = 48;
const AT_MSI_ADDRESS: usize = 56;
const AT_NAME: usize = 64;
const AT_BOARD_NAME: usize = 96;
const AT_PANIC_CODE: usize = 160;
const AT_PANIC_TASK_INDEX: usize = 164;
const AT_PANIC_TASK_NAME: usize = 168;
const AT_PANIC_MESSAGE_LENGTH: usize = 184;
const AT_PANIC_MESSAGE: usize = 188;
const AT_CURRENT_TASK_INDEX: usize = 444;
const AT_MU_LOCAL_BASE: usize = 448;
const AT_DMA_BASE: usize = 456;
const AT_OUTBOUND_WINDOW_BASE: usize = 464;
const AT_OUTBOUND_WINDOW_SIZE: usize = 472;
const AT_SYSCTL_BASE: usize = 480;
const AT_CONFIG_ROM_BASE: usize = 488;
const AT_CONFIG_ROM_BYTES: usize = 496;
if (<u32>AT_NAME + PROCESSOR_NAME_BYTES != <u32>AT_BOARD_NAME) ERROR("boot info: the processor's name runs to the board's");
if (<u32>AT_BOARD_NAME + BOARD_NAME_BYTES != <u32>AT_PANIC_CODE) ERROR("boot info: the board's name runs to the panic code");
if (<u32>AT_PANIC_TASK_NAME + PANIC_TASK_NAME_BYTES != <u32>AT_PANIC_MESSAGE_LENGTH) ERROR("boot info: the task name runs to the message length");
if (<u32>AT_PANIC_MESSAGE + PANIC_MESSAGE_BYTES != <u32>AT_CURRENT_TASK_INDEX) ERROR("boot info: the message runs to the current task");
if (<u32>AT_CONFIG_ROM_BYTES + 4 > BOOT_INFO_SIZE_BYTES) ERROR("boot info: every field within the block");

export enum Role {
  Host = 0, // faces the network: UMA, CTA, TTS, plus its own RTA and DDMs
  Storage = 1, // behind the bus: RTA and DDMs only
}

@inline export function bootInfoMagic(info: usize): u32 { return load<u32>(info, AT_MAGIC); }
@inline export function bootInfoAbiVersion(info: usize): u32 { return load<u16>(info, AT_ABI_VERSION); }
@inline export function bootInfoSizeBytes(info: usize): u32 { return load<u16>(info, AT_SIZE_BYTES); }
@inline export function bootInfoRole(info: usize): u32 { return load<u32>(info, AT_ROLE); }
@inline export function bootInfoProcessorIndex(info: usize): u32 { return load<u32>(info, AT_PROCESSOR_INDEX); }
@inline export function bootInfoRamBytes(info: usize): u64 { return load<u64>(info, AT_RAM_BYTES); }
@inline export function bootInfoEcamBase(info: usize): u64 { return load<u64>(info, AT_ECAM_BASE); }
@inline export function bootInfoEcamBusCount(info: usize): u32 { return load<u32>(info, AT_ECAM_BUS_COUNT); }
@inline export function bootInfoFlags(info: usize): u32 { return load<u32>(info, AT_FLAGS); }
@inline export function bootInfoPciMemBase(info: usize): u64 { return load<u64>(info, AT_PCI_MEM_BASE); }
@inline export function bootInfoPciMemSize(info: usize): u64 { return load<u64>(info, AT_PCI_MEM_SIZE); }
@inline export function bootInfoMsiAddress(info: usize): u64 { return load<u64>(info, AT_MSI_ADDRESS); }
@inline export function bootInfoMuLocalBase(info: usize): u64 { return load<u64>(info, AT_MU_LOCAL_BASE); }
@inline export function bootInfoDmaBase(info: usize): u64 { return load<u64>(info, AT_DMA_BASE); }
@inline export function bootInfoOutboundWindowBase(info: usize): u64 { return load<u64>(info, AT_OUTBOUND_WINDOW_BASE); }
@inline export function bootInfoOutboundWindowSize(info: usize): u64 { return load<u64>(info, AT_OUTBOUND_WINDOW_SIZE); }
@inline export function bootInfoSysctlBase(info: usize): u64 { return load<u64>(info, AT_SYSCTL_BASE); }
@inline export function bootInfoConfigRomBase(info: usize): u64 { return load<u64>(info, AT_CONFIG_ROM_BASE); }
@inline export function bootInfoConfigRomBytes(info: usize): u32 { return load<u32>(info, AT_CONFIG_ROM_BYTES); }
@inline export function bootInfoNamePtr(info: usize): usize { return info + AT_NAME; }
@inline export function bootInfoBoardNamePtr(info: usize): usize { return info + AT_BOARD_NAME; }

@inline export function bootInfoSetPanic(info: usize, code: u32, taskIndex: u32): void {
  store<u32>(info, code, AT_PANIC_CODE);
  store<u32>(info, taskIndex, AT_PANIC_TASK_INDEX);
}
@inline export function bootInfoPanicTaskNamePtr(info: usize): usize { return info + AT_PANIC_TASK_NAME; }
@inline export function bootInfoSetPanicMessageLength(info: usize, lengthBytes: u32): void {
  store<u32>(info, lengthBytes, AT_PANIC_MESSAGE_LENGTH);
}
@inline export function bootInfoPanicMessagePtr(info: usize): usize { return info + AT_PANIC_MESSAGE; }
@inline export function bootInfoSetCurrentTask(info: usize, taskIndex: u32): void { store<u32>(info, taskIndex, AT_CURRENT_TASK_INDEX); }
