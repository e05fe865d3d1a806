package nats

import (
	"math"
	"strconv"
)

// appendJavaFloat appends f as Java's Double.toString (bits 64) or
// Float.toString (bits 32) prints it: Canal's values and Kafka Connect's
// JsonConverter (through Jackson) both go through them. The digits are the
// shortest that read back as the same value (as JDK 19 and later print
// them); the layout is Java's: plain decimal with at least one fraction
// digit for 10^-3 <= |f| < 10^7 ("0.25", "1.0", "1234567.0"), otherwise
// d.dddE±n ("1.0E7", "1.5E-4").
func appendJavaFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, bits) // -d.ddde±xx
	if s[0] == '-' {
		dst = append(dst, '-')
		s = s[1:]
	}
	e := 0
	for i, c := range s {
		if c == 'e' {
			e, _ = strconv.Atoi(string(s[i+1:]))
			s = s[:i]
			break
		}
	}
	digits := make([]byte, 0, len(s))
	for _, c := range s {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		point := e + 1 // digits before the decimal point
		switch {
		case point <= 0:
			dst = append(dst, "0."...)
			for range -point {
				dst = append(dst, '0')
			}
			return append(dst, digits...)
		case point >= len(digits):
			dst = append(dst, digits...)
			for range point - len(digits) {
				dst = append(dst, '0')
			}
			return append(dst, ".0"...)
		}
		dst = append(dst, digits[:point]...)
		dst = append(dst, '.')
		return append(dst, digits[point:]...)
	}
	dst = append(dst, digits[0], '.')
	if len(digits) > 1 {
		dst = append(dst, digits[1:]...)
	} else {
		dst = append(dst, '0')
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(e), 10)
}
