#!/usr/bin/env bash
# otter: (re)generate the TEST-ONLY keys, certificates and signed test data in
# test-keys/. Everything made here is public: never provision any of it on a
# real device. See test-keys/README.md.
#
# Usage: tools/gen-test-keys.sh [output-dir]   (default: test-keys/ beside tools/)
#
# Overwrites every file it makes. Keys and ECDSA signatures are random, so two
# runs give different files; blocks.bin is deterministic (its SHA-256 is checked
# below). Needs openssl 1.1.1 or later.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-"$here/../test-keys"}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

days=36500 # about 100 years: test certificates must not expire under the tests

# EC P-256 key (PKCS#8 PEM) and its public key.
gen_p256() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1"
}

# Self-signed code-signing certificate: gen_cert KEY CRT "COMMON NAME"
gen_cert() {
    openssl req -new -x509 -sha256 -key "$1" -out "$2" -days "$days" \
        -subj "/O=otter TEST ONLY/CN=$3" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature" \
        -addext "extendedKeyUsage=codeSigning"
}

cd "$out"

# The trusted test signer: what the tests and the simulated devices accept.
gen_p256 codesign-test.key
gen_cert codesign-test.key codesign-test.crt "otter test code signing (TEST ONLY)"
openssl pkey -in codesign-test.key -pubout -out codesign-test.pub.pem

# A second P-256 signer that no test device trusts.
gen_p256 untrusted-test.key
gen_cert untrusted-test.key untrusted-test.crt "otter untrusted signer (TEST ONLY)"

# Signers of the wrong kind, which verification must refuse: RSA 2048 and P-384.
# (openssl prints key-generation progress on stderr: shown only if it fails)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-test.key 2>"$tmp/rsa.err" ||
    {
        cat "$tmp/rsa.err" >&2
        exit 1
    }
gen_cert rsa-test.key rsa-test.crt "otter RSA signer, refused (TEST ONLY)"
openssl pkey -in rsa-test.key -pubout -out rsa-test.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
    -pkeyopt ec_param_enc:named_curve -out "$tmp/p384.key"
openssl pkey -in "$tmp/p384.key" -pubout -out p384-test.pub.pem

# Conformance test data: 3 x 1024 + 100 bytes, deterministic. AES-128-CTR with
# key 000102..0f and an all-zero IV over zero bytes (no salt, no randomness).
head -c 3172 /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
        -iv 00000000000000000000000000000000 -out blocks.bin
want_sha=35917ee9cf747cc4161c5b4550ecb7d6c69045fde63df37742f8f150f4136a9c
have_sha="$(openssl dgst -sha256 -r blocks.bin | cut -d' ' -f1)"
if [ "$have_sha" != "$want_sha" ]; then
    echo "gen-test-keys: blocks.bin SHA-256 is $have_sha, expected $want_sha" >&2
    exit 1
fi

# sig-sha256-ecdsa: ECDSA P-256 over SHA-256 of the whole file, DER SEQUENCE{r,s}.
openssl dgst -sha256 -sign codesign-test.key -out blocks.sig.der blocks.bin
# A well-formed signature by the right key over other bytes.
printf 'otter: these are not the bytes of blocks.bin\n' >"$tmp/other.bin"
openssl dgst -sha256 -sign codesign-test.key -out blocks.bad.sig.der "$tmp/other.bin"
# A signature over the right bytes by the untrusted key.
openssl dgst -sha256 -sign untrusted-test.key -out blocks.untrusted.sig.der blocks.bin
# The valid signature as a job document carries it: base64, one line.
openssl base64 -A -in blocks.sig.der -out blocks.sig.b64

# Check what was made with openssl itself.
openssl dgst -sha256 -verify codesign-test.pub.pem -signature blocks.sig.der blocks.bin >/dev/null
openssl x509 -in codesign-test.crt -noout -pubkey >"$tmp/crt.pub.pem"
openssl dgst -sha256 -verify "$tmp/crt.pub.pem" -signature blocks.sig.der blocks.bin >/dev/null
openssl x509 -in untrusted-test.crt -noout -pubkey >"$tmp/untrusted.pub.pem"
openssl dgst -sha256 -verify "$tmp/untrusted.pub.pem" -signature blocks.untrusted.sig.der \
    blocks.bin >/dev/null
if openssl dgst -sha256 -verify codesign-test.pub.pem -signature blocks.bad.sig.der \
    blocks.bin >/dev/null 2>&1; then
    echo "gen-test-keys: blocks.bad.sig.der verifies, it must not" >&2
    exit 1
fi
if openssl dgst -sha256 -verify codesign-test.pub.pem -signature blocks.untrusted.sig.der \
    blocks.bin >/dev/null 2>&1; then
    echo "gen-test-keys: blocks.untrusted.sig.der verifies with the trusted key" >&2
    exit 1
fi
if [ "$(openssl base64 -d -A -in blocks.sig.b64 | cmp - blocks.sig.der && echo same)" != same ]; then
    echo "gen-test-keys: blocks.sig.b64 does not decode to blocks.sig.der" >&2
    exit 1
fi

echo "gen-test-keys: TEST-ONLY keys and signatures written to $out"
