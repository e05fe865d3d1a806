package nats

import (
	"encoding/base64"
	"testing"
)

// TestJavaFloat: the texts Java's Double.toString and Float.toString give
// (JDK 19+, shortest digits).
func TestJavaFloat(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		bits int
		want string
	}{
		{0, 64, "0.0"}, {1, 64, "1.0"}, {-1.5, 64, "-1.5"}, {0.25, 64, "0.25"}, {100, 64, "100.0"},
		{1234567, 64, "1234567.0"}, {1e7, 64, "1.0E7"}, {12345678.9, 64, "1.23456789E7"}, {0.001, 64, "0.001"},
		{0.0001, 64, "1.0E-4"}, {1.5e-7, 64, "1.5E-7"}, {1e300, 64, "1.0E300"}, {0.1, 64, "0.1"},
		{float64(float32(0.1)), 32, "0.1"}, {float64(float32(1e10)), 32, "1.0E10"}, {float64(float32(3.4028235e38)), 32, "3.4028235E38"},
		{float64(float32(-2.5)), 32, "-2.5"}, {float64(float32(16777216)), 32, "1.6777216E7"},
	} {
		if got := string(appendJavaFloat(nil, tt.f, tt.bits)); got != tt.want {
			t.Errorf("appendJavaFloat(%v, %d) = %s, want %s", tt.f, tt.bits, got, tt.want)
		}
	}
}

// TestUnscaledBytes: Kafka Connect's Decimal bytes, BigInteger.toByteArray
// of the unscaled value.
func TestUnscaledBytes(t *testing.T) {
	for d, want := range map[string]string{
		"10.50": "BBo=", "0.01": "AQ==", "-0.01": "/w==", "0": "AA==", "1.28": "AIA=", "-1.28": "gA==", "-1.29": "/38=",
		"18446744073709551615": "AP//////////", "-12345678901234567890.0123456789": "/nEW8Ak8jB8R8/sq6w==",
	} {
		if got := base64.StdEncoding.EncodeToString(unscaledBytes(d)); got != want {
			t.Errorf("unscaledBytes(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestJSONText(t *testing.T) {
	in := []byte(`{"k":[1,"a, b: c",2.5e0],"n":null,"s":"q\"x"}`)
	if got := string(mysqlJSONText(in)); got != `{"k": [1, "a, b: c", 2.5], "n": null, "s": "q\"x"}` {
		t.Errorf("mysqlJSONText = %s", got)
	}
	if got := string(compactJSON([]byte(`{"k": [1, "a b", 1e-7]}`))); got != `{"k":[1,"a b",0.0000000999999999999999954748111825886258685613938723690807819366455078125]}` {
		t.Errorf("compactJSON = %s", got)
	}
}
