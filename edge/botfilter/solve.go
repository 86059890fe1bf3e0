package botfilter

import (
	"crypto/sha256"
	"math/bits"
	"strconv"
)

// solves reports whether SHA-256(challenge + ":" + nonce) has at least
// difficulty leading zero bits. This is the rule the fan's browser solves,
// so it must not change without changing the page.
func solves(challenge, nonce string, difficulty int) bool {
	var buf [MaxChallengeLen + 1 + MaxNonceLen]byte
	n := copy(buf[:], challenge)
	buf[n] = ':'
	n++
	n += copy(buf[n:], nonce)
	return LeadingZeroBits(sha256.Sum256(buf[:n])) >= difficulty
}

// Solve returns the smallest decimal nonce, without leading zeros, that
// solves challenge at difficulty leading zero bits. A difficulty of 0 or less
// returns "0". Solve returns "" for a difficulty above MaxDifficulty, or if
// no nonce below 2^(difficulty+20) works, which has a probability of about
// e^(-2^20). At difficulty d it computes about 2^d hashes on average.
func Solve(challenge string, difficulty int) string {
	if difficulty <= 0 {
		return "0"
	}
	if difficulty > MaxDifficulty {
		return ""
	}

	buf := make([]byte, 0, len(challenge)+1+MaxNonceLen)
	buf = append(buf, challenge...)
	buf = append(buf, ':')
	prefixLen := len(buf)

	limit := uint64(1) << (difficulty + 20)
	for nonce := range limit {
		buf = strconv.AppendUint(buf[:prefixLen], nonce, 10)
		if LeadingZeroBits(sha256.Sum256(buf)) >= difficulty {
			return string(buf[prefixLen:])
		}
	}
	return ""
}

// LeadingZeroBits returns the number of leading zero bits of sum, reading
// bytes in order and each byte from its most significant bit.
func LeadingZeroBits(sum [32]byte) int {
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}
