// The boot-info block, host side: written before boot, read back for the panic record (docs/board-abi.md).
// assembly/board/boot_info.ts is the firmware's side of the same layout; test/unit/abi/boot_info.test.ts ties them.

export const BOOT_INFO_MAGIC = 0x42504f49; // "IOPB"
export const BOOT_INFO_SIZE_BYTES = 512;
export const BOOT_INFO_OFFSET_FROM_TOP = 4096; // the emulator places it at ramBytes - 4096
export const TASK_INDEX_NONE = 0xffff_ffff;

export const enum BootInfoOffset {
  Magic = 0,
  AbiVersion = 4,
  SizeBytes = 6,
  Role = 8,
  ProcessorIndex = 12,
  RamBytes = 16,
  EcamBase = 24,
  EcamBusCount = 32,
  Flags = 36,
  PciMemBase = 40,
  PciMemSize = 48,
  MsiAddress = 56,
  Name = 64,
  BoardName = 96,
  PanicCode = 160,
  PanicTaskIndex = 164,
  PanicTaskName = 168,
  PanicMessageLength = 184,
  PanicMessage = 188,
  CurrentTaskIndex = 444,
  MuLocalBase = 448,
  DmaBase = 456,
  OutboundWindowBase = 464,
  OutboundWindowSize = 472,
  SysctlBase = 480,
  ConfigRomBase = 488,
  ConfigRomBytes = 496,
}

export interface BootInfo {
  abiVersion: number;
  role: "host" | "storage";
  processorIndex: number;
  ramBytes: number;
  ecamBase: bigint;
  ecamBusCount: number;
  flags: number;
  pciMemBase: bigint;
  pciMemSize: bigint;
  msiAddress: bigint;
  name: string;
  boardName: string;
  muLocalBase: bigint; // 0: no messaging unit (the host processor)
  dmaBase: bigint;
  outboundWindowBase: bigint; // 0: no outbound window (the host processor)
  outboundWindowSize: bigint;
  sysctlBase: bigint; // 0: none (storage processors)
  configRomBase: bigint; // 0: none (storage processors)
  configRomBytes: number;
}

export interface PanicRecord {
  code: number;
  taskIndex: number;
  taskName: string;
  message: string;
}

export function writeBootInfo(view: DataView, at: number, info: BootInfo): void {
  new Uint8Array(view.buffer, view.byteOffset + at, BOOT_INFO_SIZE_BYTES).fill(0);
  view.setUint32(at + BootInfoOffset.Magic, BOOT_INFO_MAGIC, true);
  view.setUint16(at + BootInfoOffset.AbiVersion, info.abiVersion, true);
  view.setUint16(at + BootInfoOffset.SizeBytes, BOOT_INFO_SIZE_BYTES, true);
  view.setUint32(at + BootInfoOffset.Role, info.role === "host" ? 0 : 1, true);
  view.setUint32(at + BootInfoOffset.ProcessorIndex, info.processorIndex, true);
  view.setBigUint64(at + BootInfoOffset.RamBytes, BigInt(info.ramBytes), true);
  view.setBigUint64(at + BootInfoOffset.EcamBase, info.ecamBase, true);
  view.setUint32(at + BootInfoOffset.EcamBusCount, info.ecamBusCount, true);
  view.setUint32(at + BootInfoOffset.Flags, info.flags, true);
  view.setBigUint64(at + BootInfoOffset.PciMemBase, info.pciMemBase, true);
  view.setBigUint64(at + BootInfoOffset.PciMemSize, info.pciMemSize, true);
  view.setBigUint64(at + BootInfoOffset.MsiAddress, info.msiAddress, true);
  writeAscii(view, at + BootInfoOffset.Name, 32, info.name);
  writeAscii(view, at + BootInfoOffset.BoardName, 64, info.boardName);
  view.setUint32(at + BootInfoOffset.PanicTaskIndex, TASK_INDEX_NONE, true);
  view.setUint32(at + BootInfoOffset.CurrentTaskIndex, TASK_INDEX_NONE, true);
  view.setBigUint64(at + BootInfoOffset.MuLocalBase, info.muLocalBase, true);
  view.setBigUint64(at + BootInfoOffset.DmaBase, info.dmaBase, true);
  view.setBigUint64(at + BootInfoOffset.OutboundWindowBase, info.outboundWindowBase, true);
  view.setBigUint64(at + BootInfoOffset.OutboundWindowSize, info.outboundWindowSize, true);
  view.setBigUint64(at + BootInfoOffset.SysctlBase, info.sysctlBase, true);
  view.setBigUint64(at + BootInfoOffset.ConfigRomBase, info.configRomBase, true);
  view.setUint32(at + BootInfoOffset.ConfigRomBytes, info.configRomBytes, true);
}

export function readPanicRecord(view: DataView, at: number): PanicRecord {
  const length = Math.min(view.getUint32(at + BootInfoOffset.PanicMessageLength, true), 256);
  return {
    code: view.getUint32(at + BootInfoOffset.PanicCode, true),
    taskIndex: view.getUint32(at + BootInfoOffset.PanicTaskIndex, true),
    taskName: readAscii(view, at + BootInfoOffset.PanicTaskName, 16),
    message: readAscii(view, at + BootInfoOffset.PanicMessage, length),
  };
}

/** The task the firmware is running now (TASK_INDEX_NONE between dispatches), for the board's watchdog report. */
export function readCurrentTask(view: DataView, at: number): number {
  return view.getUint32(at + BootInfoOffset.CurrentTaskIndex, true);
}

function writeAscii(view: DataView, at: number, capacity: number, text: string): void {
  const bytes = Buffer.from(text, "ascii");
  if (bytes.length > capacity) throw new RangeError(`"${text}" does not fit ${capacity} bytes`);
  for (let i = 0; i < bytes.length; i++) view.setUint8(at + i, bytes[i]!);
}

function readAscii(view: DataView, at: number, maxBytes: number): string {
  let text = "";
  for (let i = 0; i < maxBytes; i++) {
    const b = view.getUint8(at + i);
    if (b === 0) break;
    text += String.fromCharCode(b);
  }
  return text;
}
