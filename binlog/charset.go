package binlog

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// Row events carry text in the column's character set. Values are UTF-8
// strings when the bytes convert to UTF-8 and back exactly; otherwise they
// stay RawText, the stored bytes, so that nothing is ever replaced by "?"
// or U+FFFD on the way to a target.

// multiByte are the multi-byte character sets x/text converts. Their text
// is checked to convert back to exactly the stored bytes; x/text's tables
// differ from MySQL's for a few characters (big5 0xC755 is U+30BD in MySQL,
// U+306E in x/text), which JSON output then shows as x/text reads them.
var multiByte = map[string]encoding.Encoding{
	"gbk":     simplifiedchinese.GBK,
	"gb2312":  simplifiedchinese.GBK,
	"gb18030": simplifiedchinese.GB18030,
	"big5":    traditionalchinese.Big5,
	"sjis":    japanese.ShiftJIS,
	"cp932":   japanese.ShiftJIS,
	"ujis":    japanese.EUCJP,
	"eucjpms": japanese.EUCJP,
	"euckr":   korean.EUCKR,
	"ucs2":    unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf16":   unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf16le": unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM),
	"utf32":   utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM),
}

// notASCII are the character sets whose bytes below 0x80 are not ASCII:
// the UTF-16/32 family (decoded by x/text) and, from the server's tables,
// swe7 (7-bit Swedish).
var notASCII = map[string]bool{"ucs2": true, "utf16": true, "utf16le": true, "utf32": true}

// byteTable is a single-byte character set as a table both ways; entries
// of dec that are utf8.RuneError are bytes the character set does not map.
type byteTable struct {
	dec [256]rune
	enc map[rune]byte
}

// byteTables are MySQL's 8-bit character sets, from the server's own
// conversion tables (charset_tables.go): latin1 is cp1252 with 0x81, 0x8D,
// 0x8F, 0x90 and 0x9D as U+0081..., swe7 maps '[' to 'Ä', and so on.
var byteTables = map[string]*byteTable{}

func init() {
	for name, tab := range mysqlByteTables {
		bt := &byteTable{dec: *tab, enc: make(map[rune]byte, 256)}
		for i, r := range bt.dec {
			if r == utf8.RuneError {
				continue
			}
			if _, dup := bt.enc[r]; dup {
				// Two bytes for one character: neither converts back exactly.
				bt.dec[bt.enc[r]] = utf8.RuneError
				bt.dec[i] = utf8.RuneError
				continue
			}
			bt.enc[r] = byte(i)
		}
		for b := range 0x80 {
			if bt.dec[b] != rune(b) {
				notASCII[name] = true
				break
			}
		}
		byteTables[name] = bt
	}
}

// isUTF8 reports whether charset cs stores UTF-8.
func isUTF8(cs string) bool {
	switch cs {
	case "utf8mb4", "utf8mb3", "utf8":
		return true
	}
	return false
}

// textDecoder returns the function converting bytes stored in charset cs
// to a Value: a UTF-8 string when the conversion is exact both ways,
// RawText otherwise. An empty cs (character set unknown) is treated as
// UTF-8.
func textDecoder(cs string) func([]byte) Value {
	text := textDecoderIn(cs)
	return func(b []byte) Value { return text(b, nil) }
}

// textDecoderIn is textDecoder with the value's memory taken from an arena.
func textDecoderIn(cs string) func([]byte, *arena) Value {
	cs = strings.ToLower(cs)
	raw := func(b []byte, _ *arena) Value { return RawText{Bytes: bytes.Clone(b), Charset: cs} }
	switch {
	case cs == "" || isUTF8(cs):
		return func(b []byte, a *arena) Value {
			if utf8.Valid(b) {
				return a.dataText(b)
			}
			return raw(b, a)
		}
	case byteTables[cs] != nil:
		bt := byteTables[cs]
		ascii := !notASCII[cs]
		return func(b []byte, a *arena) Value {
			if ascii && IsASCII(b) {
				return a.dataText(b)
			}
			out := make([]byte, 0, len(b)+len(b)/2)
			for _, c := range b {
				r := bt.dec[c]
				if r == utf8.RuneError {
					return raw(b, a)
				}
				out = utf8.AppendRune(out, r)
			}
			return a.text(out)
		}
	case multiByte[cs] != nil:
		enc := multiByte[cs]
		ascii := !notASCII[cs]
		return func(b []byte, a *arena) Value {
			if ascii && IsASCII(b) {
				return a.dataText(b)
			}
			out, err := enc.NewDecoder().Bytes(b)
			if err != nil || !utf8.Valid(out) || bytes.ContainsRune(out, utf8.RuneError) {
				return raw(b, a)
			}
			back, err := enc.NewEncoder().Bytes(out)
			if err != nil || !bytes.Equal(back, b) {
				return raw(b, a)
			}
			return a.text(out)
		}
	case notASCII[cs]:
		return raw
	}
	// A character set sluice has no table for: ASCII text is text, the
	// rest stays bytes.
	return func(b []byte, a *arena) Value {
		if IsASCII(b) {
			return a.dataText(b)
		}
		return raw(b, a)
	}
}

// EncodeText converts a text value (UTF-8) to the bytes charset cs stores
// for it. ok is false when cs is unknown to sluice or s has a character cs
// cannot store; text decoded from cs always converts back exactly.
func EncodeText(s, cs string) (b []byte, ok bool) {
	cs = strings.ToLower(cs)
	switch {
	case isUTF8(cs):
		return []byte(s), utf8.ValidString(s)
	case byteTables[cs] != nil:
		bt := byteTables[cs]
		out := make([]byte, 0, len(s))
		for _, r := range s {
			c, ok := bt.enc[r]
			if !ok {
				return nil, false
			}
			out = append(out, c)
		}
		return out, true
	case multiByte[cs] != nil:
		out, err := multiByte[cs].NewEncoder().Bytes([]byte(s))
		return out, err == nil
	case !notASCII[cs] && IsASCII(s):
		return []byte(s), true
	}
	return nil, false
}

// ASCIICompatible reports whether charset cs stores ASCII text as ASCII
// bytes, so that an ASCII literal means the same in it as in utf8mb4.
func ASCIICompatible(cs string) bool { return !notASCII[strings.ToLower(cs)] }

// IsASCII reports whether b, text or bytes, is all ASCII. It checks 8
// bytes at a time: a snapshot checks millions of values.
func IsASCII[T ~string | ~[]byte](b T) bool {
	for len(b) >= 8 {
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for i := 0; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}
