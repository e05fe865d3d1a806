package binlog

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// Row events carry text in the column's character set. Everything sluice
// emits is UTF-8, so other character sets are converted.
var charsets = map[string]encoding.Encoding{
	"latin1":  charmap.Windows1252, // MySQL's latin1 is cp1252
	"latin2":  charmap.ISO8859_2,
	"latin5":  charmap.ISO8859_9,
	"latin7":  charmap.ISO8859_13,
	"greek":   charmap.ISO8859_7,
	"hebrew":  charmap.ISO8859_8,
	"cp1250":  charmap.Windows1250,
	"cp1251":  charmap.Windows1251,
	"cp1256":  charmap.Windows1256,
	"cp1257":  charmap.Windows1257,
	"cp850":   charmap.CodePage850,
	"cp866":   charmap.CodePage866,
	"koi8r":   charmap.KOI8R,
	"koi8u":   charmap.KOI8U,
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

// textDecoder returns a function converting bytes in charset cs to a UTF-8
// string, or nil when no conversion is needed (UTF-8, ASCII, unknown).
func textDecoder(cs string) func([]byte) string {
	enc := charsets[strings.ToLower(cs)]
	if enc == nil {
		return nil
	}
	return func(b []byte) string {
		if isASCII(b) {
			return string(b)
		}
		out, err := enc.NewDecoder().Bytes(b)
		if err != nil || !utf8.Valid(out) {
			return string(b)
		}
		return string(out)
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
