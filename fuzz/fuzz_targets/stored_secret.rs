//! Stored-secret parsing and decryption, and secret parsing. Any stored
//! text: no panic, and nothing decrypts that the key did not encrypt. Any
//! secret text Secret::new accepts: a verifier and a signer build from it
//! (for a scheme that takes such keys) and it survives encryption.
#![no_main]

use hookseal::{Keyring, Scheme, Secret, ServerKey, Signer, StorageError, Verifier};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OLD: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = ServerKey::from_hex(KEY).unwrap();
    let ring = Keyring::new(ServerKey::from_hex(KEY).unwrap())
        .with_old_key(ServerKey::from_hex(OLD).unwrap());
    // A stored value: refused, never a panic (a fuzzer cannot forge GCM).
    if let Ok(s) = key.decrypt(text) {
        panic!("decrypted fuzzed text to a secret of {} bytes", s.expose().len());
    }
    assert!(ring.decrypt(text).is_err());
    let _ = ring.needs_rewrap(text);
    assert!(ring.rewrap(text).is_err());
    let _ = ServerKey::from_hex(text);
    // A secret: either refused, or usable and stored faithfully.
    if let Ok(secret) = Secret::new(text) {
        // Stored and read back, or refused as too long to read back.
        match ring.encrypt(&secret) {
            Ok(stored) => {
                assert_eq!(ring.decrypt(&stored).unwrap().expose(), secret.expose());
                let versioned = key.encrypt_versioned(&secret).unwrap();
                assert_eq!(key.decrypt(&versioned).unwrap().expose(), secret.expose());
            }
            Err(StorageError::TooLong) => assert!(secret.expose().len() > 2000),
            Err(e) => panic!("encryption failed: {e}"),
        }
        for name in ["native", "standard", "github", "stripe"] {
            let scheme = Scheme::preset(name).unwrap();
            let v = Verifier::new(scheme.clone(), std::slice::from_ref(&secret));
            let s = Signer::new(scheme, std::slice::from_ref(&secret));
            // A public key verifies but cannot sign; otherwise both or neither.
            if !text.starts_with("whpk_") {
                assert_eq!(v.is_ok(), s.is_ok(), "{name}: signer and verifier disagree");
            }
        }
    }
});
