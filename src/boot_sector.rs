//! A bootable disk in two sectors, for the real-QEMU tests, the backup
//! benchmark and the demo: a 512-byte boot sector that reads the disk's
//! second sector and prints `HYPERFLEET-BOOT-OK ` and the text found there
//! to COM1, then halts. A nonce written into sector 2 proves that the
//! *backed-up content* booted, not just that something ran.
//!
//! Assembled with GNU as (`as --32` + `ld -m elf_i386 -Ttext 0x7c00 --oformat binary`):
//!
//! ```text
//! .code16
//!     cli; xor %ax,%ax; mov %ax,%ds; mov %ax,%es; mov %ax,%ss; mov $0x7c00,%sp
//!     mov $0x0201,%ax; mov $0x7e00,%bx; mov $0x0002,%cx; xor %dh,%dh; int $0x13  # LBA 1 → 0:7e00
//!     mov $msg,%si; call puts; mov $0x7e00,%si; call puts; mov $0x0a,%al; call putc
//! halt: cli; hlt; jmp halt
//! puts: lodsb; test %al,%al; jz 1f; call putc; jmp puts
//! 1:    ret
//! putc: mov $0x3f8,%dx; out %al,%dx; ret
//! msg:  .asciz "HYPERFLEET-BOOT-OK "
//! . = _start + 510
//! .byte 0x55, 0xaa
//! ```

/// The boot sector's code (before the `55 aa` signature at offset 510), in hex.
pub const CODE_HEX: &str = "fa31c08ed88ec08ed0bc007cb80102bb007eb9020030f6cd13be3e7ce80f00be007ee80900b00ae80f00\
                            faf4ebfcac84c07405e80300ebf6c3baf803eec34859504552464c4545542d424f4f542d4f4b20";

/// What the guest prints first.
pub const MARKER: &str = "HYPERFLEET-BOOT-OK";

/// The disk's first two sectors: the boot sector and `nonce` (at most 511 bytes) in sector 2.
pub fn first_sectors(nonce: &str) -> Vec<u8> {
    let mut bytes = vec![0u8; 1024];
    let code: Vec<u8> = (0..CODE_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&CODE_HEX[i..i + 2], 16).expect("the boot sector is hex"))
        .collect();
    bytes[..code.len()].copy_from_slice(&code);
    bytes[510] = 0x55;
    bytes[511] = 0xaa;
    let nonce = &nonce.as_bytes()[..nonce.len().min(511)];
    bytes[512..512 + nonce.len()].copy_from_slice(nonce);
    bytes
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_sectors_with_the_signature_and_the_nonce() {
        let b = super::first_sectors("nonce-1");
        assert_eq!((b.len(), b[0], b[510], b[511]), (1024, 0xfa, 0x55, 0xaa));
        assert_eq!(&b[512..519], b"nonce-1");
        assert_eq!(b[519], 0, "the guest prints up to the first zero");
    }
}
