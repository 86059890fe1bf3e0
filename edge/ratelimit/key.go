package ratelimit

import (
	"encoding/binary"
	"net/netip"
)

// bucketKey names the bucket of one prefix.
type bucketKey struct {
	// prefix is the IPv4 address as a number, or the first 8 bytes of the
	// IPv6 address read big-endian, with the host bits zero.
	prefix uint64
	// bits is the prefix length. IPv4 keys have 32 or 24 and IPv6 keys 64 or
	// 48, so the two families never share a key.
	bits uint64
}

// Bit counts of the keys of invalid addresses. No valid prefix has them.
const (
	invalidAddrBits   = 255
	invalidSubnetBits = 254
)

// keysOf returns the bucket keys of addr: its /32 and /24 for IPv4, or its
// /64 and /48 for IPv6. An IPv4-mapped address counts as IPv4, and zones are
// ignored. All invalid addresses share one pair of keys.
func keysOf(addr netip.Addr) (addrKey, subnetKey bucketKey) {
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		a := addr.As4()
		v := uint64(binary.BigEndian.Uint32(a[:]))
		return bucketKey{prefix: v, bits: 32}, bucketKey{prefix: v &^ 0xff, bits: 24}
	case addr.Is6():
		a := addr.As16()
		v := binary.BigEndian.Uint64(a[:8])
		return bucketKey{prefix: v, bits: 64}, bucketKey{prefix: v &^ 0xffff, bits: 48}
	default:
		return bucketKey{bits: invalidAddrBits}, bucketKey{bits: invalidSubnetBits}
	}
}
