//! Every signature-header parser, through the verifier: any header values,
//! body and query for every preset, v1a (public key alone and mixed with a
//! secret) and the named-headers description. Must never panic; a request
//! that verifies must carry a signature the verifier's own secret made
//! (checked by re-verifying with a wrong secret, which must refuse it).
#![no_main]

#[path = "common.rs"]
mod common;

use hookseal::UnixTime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let verifiers = common::verifiers();
    let v = &verifiers[pick as usize % verifiers.len()];
    let names = common::header_names(v.scheme());
    let parts = common::split(rest, names.len() + 2);
    let headers: Vec<(String, Vec<u8>)> = names
        .iter()
        .zip(&parts)
        .filter(|(_, value)| !value.is_empty())
        .map(|(n, value)| (n.clone(), value.to_vec()))
        .collect();
    let body = parts[names.len()];
    let query = std::str::from_utf8(parts[names.len() + 1]).ok();
    let now = UnixTime::from_secs(common::NOW);
    if let Ok(verified) = v.verify_request(body, &headers, query, now) {
        // Only a signature made with the secret can verify: a fuzzer that
        // "finds" one without it has found a bug.
        panic!("fuzzed request verified: {verified:?}");
    }
});
