// The registers and layouts the firmware's drivers and the host's device models must agree on, one device a block:
// the firmware's source (assembly/) is parsed for its constants and compared, name by name, with the host model's
// (its exports, or its source for the constants it keeps private). A host model may have registers the firmware does
// not use; every one the firmware uses must be on the host with the same value, so a change on one side alone fails.
import { describe, expect, it } from "vitest";
import * as iopBridge from "../../../host/devices/iop_bridge.ts";
import * as nic from "../../../host/devices/nic.ts";
import * as virtioScsi from "../../../host/devices/virtio_scsi.ts";
import * as pciFunction from "../../../host/bus/pci_function.ts";
import {
  disagreements, moduleConstants, named, sameNames, sourceConstants, withPrefix, type Constants,
} from "../../support/shared_constants.ts";

/** Every firmware name matching `pattern`, paired with the same name on the host; at least `countMin` of them. */
function matching(firmware: Constants, pattern: RegExp, countMin: number): [string, string][] {
  const names = [...firmware.keys()].filter((name) => pattern.test(name));
  expect(names.length, `firmware names matching ${pattern}`).toBeGreaterThanOrEqual(countMin);
  return named(...names);
}

describe("messaging unit and iop-bridge: assembly/board/mu.ts, frame.ts and host/devices/iop_bridge.ts", () => {
  const firmware = new Map([...sourceConstants("assembly/board/mu.ts"), ...sourceConstants("assembly/board/frame.ts")]);
  const host = new Map([...sourceConstants("host/devices/iop_bridge.ts"), ...moduleConstants(iopBridge)]);

  it("every register offset and bit the firmware uses", () => {
    const registers = matching(firmware, /^MU_(HOST|LOCAL)_(?!VECTOR)[A-Z0-9_]+$|^MU_(IISR|OISR|MUCR)_/, 29);
    expect(disagreements(firmware, host, registers)).toEqual([]);
  });

  it("the queues' order and the empty port", () => {
    const queues = matching(firmware, /^MU_QUEUE_(INBOUND|OUTBOUND)_/, 4);
    expect(disagreements(firmware, host, [...queues, ["FRAME_ADDRESS_NONE", "MU_QUEUE_EMPTY"]])).toEqual([]);
  });

  it("the bridge's identity, BARs and MSI-X vectors", () => {
    expect(disagreements(firmware, host, [
      ["IOP_BRIDGE_VENDOR", "IOP_BRIDGE_VENDOR_ID"], ["IOP_BRIDGE_DEVICE", "IOP_BRIDGE_DEVICE_ID"],
      ["IOP_BRIDGE_CLASS", "IOP_BRIDGE_CLASS_CODE"], ["IOP_BRIDGE_BAR_MU", "IOP_BRIDGE_BAR_MU"],
      ["IOP_BRIDGE_BAR_WINDOW", "IOP_BRIDGE_BAR_WINDOW"], ["MU_HOST_VECTOR_OUTBOUND_POST", "IOP_BRIDGE_VECTOR_OUTBOUND_POST"],
      ["MU_HOST_VECTORS", "MSIX_VECTOR_COUNT"],
    ])).toEqual([]);
  });
});

describe("NIC: assembly/tts/nic.ts and host/devices/nic.ts", () => {
  const firmware = sourceConstants("assembly/tts/nic.ts");
  const host = moduleConstants(nic);

  it("every register the driver uses (a 64-bit base is the host's _LO half)", () => {
    const registers = [...firmware.keys()].filter((name) => name.startsWith("REG_"));
    expect(registers.length).toBeGreaterThanOrEqual(13);
    const pairs = registers.map((name): [string, string] => [name, `NIC_${name.slice(4)}${name.endsWith("_BASE") ? "_LO" : ""}`]);
    expect(disagreements(firmware, host, pairs)).toEqual([]);
  });

  it("identity, limits, ring entry sizes and flags", () => {
    expect(disagreements(firmware, host, [
      ["NIC_VENDOR", "NIC_VENDOR_ID"], ["NIC_DEVICE", "NIC_DEVICE_ID"], ["NIC_CONNECTIONS_MAX", "NIC_CONN_MAX"],
      ["EVENT_BYTES", "NIC_EVENT_BYTES"], ["RX_ENTRY_BYTES", "NIC_RX_ENTRY_BYTES"], ["TX_ENTRY_BYTES", "NIC_TX_ENTRY_BYTES"],
      ["CTRL_ENABLE", "NIC_CTRL_ENABLE"], ["TX_FLAG_CLOSE", "NIC_TX_FLAG_CLOSE"],
    ])).toEqual([]);
  });

  it("the event types, one for one", () => {
    const f = withPrefix(firmware, "NicEventType.");
    const h = withPrefix(host, "NicEventType.");
    expect(f.size).toBeGreaterThanOrEqual(4);
    expect(disagreements(f, h, sameNames(f, h))).toEqual([]);
  });
});

describe("virtio-scsi: assembly/ddm/virtio_scsi/{virtio_pci,limits,controller}.ts and host/devices/virtio_scsi.ts", () => {
  const firmware = new Map([
    ...sourceConstants("assembly/ddm/virtio_scsi/virtio_pci.ts"), ...sourceConstants("assembly/ddm/virtio_scsi/limits.ts"),
    ...sourceConstants("assembly/ddm/virtio_scsi/controller.ts"),
  ]);
  const host = moduleConstants(virtioScsi);

  it("the common configuration's fields and the device status bits", () => {
    const pairs = matching(firmware, /^(COMMON_(?!BYTES)|STATUS_)/, 20);
    expect(disagreements(firmware, host, pairs)).toEqual([]);
  });

  it("identity, capability types and the VERSION_1 feature word", () => {
    expect(disagreements(firmware, host, [
      ["VSCSI_VENDOR_ID", "VIRTIO_VENDOR_ID"], ["VSCSI_DEVICE_ID", "VIRTIO_SCSI_DEVICE_ID"],
      ["CFG_TYPE_COMMON", "VIRTIO_PCI_CAP_COMMON_CFG"], ["CFG_TYPE_NOTIFY", "VIRTIO_PCI_CAP_NOTIFY_CFG"],
      ["CFG_TYPE_ISR", "VIRTIO_PCI_CAP_ISR_CFG"], ["CFG_TYPE_DEVICE", "VIRTIO_PCI_CAP_DEVICE_CFG"],
      ["FEATURE_WORD_VERSION_1", "VIRTIO_F_VERSION_1_WORD"],
    ])).toEqual([]);
  });

  it("the request queue's index (virtio §5.6.2: after controlq and eventq)", () => {
    expect(disagreements(firmware, host, [["REQUEST_QUEUE_INDEX", "QUEUE_REQUEST"]])).toEqual([]);
  });
});

describe("PCI configuration space: assembly/board/pci.ts and host/bus/pci_function.ts", () => {
  it("every configuration register, command and status bit and capability ID the enumeration uses", () => {
    const firmware = sourceConstants("assembly/board/pci.ts");
    const pairs = matching(firmware, /^(CFG_|COMMAND_|STATUS_|CAP_(MSIX|VENDOR)$)/, 9);
    expect(disagreements(firmware, moduleConstants(pciFunction), pairs)).toEqual([]);
  });

  it("the MSI-X capability's fields and bits, the table entry's size and fields (msixEnable against the host's MSI-X model)", () => {
    const firmware = sourceConstants("assembly/board/pci.ts");
    const pairs = matching(firmware, /^MSIX_/, 11);
    expect(disagreements(firmware, sourceConstants("host/bus/pci_function.ts"), pairs)).toEqual([]);
  });
});

describe("system controller: assembly/board/sysctl.ts and host/bus/sysctl.ts", () => {
  it("its ID, the confirm magic and the registers the firmware uses", () => {
    const firmware = sourceConstants("assembly/board/sysctl.ts");
    const pairs = matching(firmware, /^(SYSCTL_|REG_)/, 5);
    expect(disagreements(firmware, sourceConstants("host/bus/sysctl.ts"), pairs)).toEqual([]);
  });
});
