package softauthn

import "encoding/binary"

// A tiny CBOR encoder for the two fixed structures an authenticator emits (the
// attestation object and the COSE key), so the package needs no CBOR library.
// Callers write map keys in CTAP2 canonical order themselves.

// CBOR major types (RFC 8949 §3.1).
const (
	cborUint  = 0
	cborNeg   = 1
	cborBytes = 2
	cborText  = 3
	cborMap   = 5
)

// cborHead appends the shortest head for major type major and argument n, as
// CTAP2 canonical CBOR requires.
func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, m|27), n)
	}
}

// cborInt appends a signed integer (major type 0 or 1).
func cborInt(b []byte, v int64) []byte {
	if v >= 0 {
		return cborHead(b, cborUint, uint64(v))
	}
	return cborHead(b, cborNeg, uint64(-(v + 1)))
}

func cborByteString(b, v []byte) []byte {
	return append(cborHead(b, cborBytes, uint64(len(v))), v...)
}

func cborTextString(b []byte, v string) []byte {
	return append(cborHead(b, cborText, uint64(len(v))), v...)
}

func cborMapHead(b []byte, pairs int) []byte {
	return cborHead(b, cborMap, uint64(pairs))
}
