package schema

import "github.com/pingcap/tidb/pkg/parser/charset"

// The TiDB parser knows every MySQL character set and collation but accepts
// only the few TiDB supports (utf8, utf8mb4, ascii, latin1, binary, gbk,
// gb18030), and fails a CREATE TABLE ... CHARSET=cp1251. Tracking a MySQL
// schema needs them all, so the rest are registered with the parser here.
func init() {
	for _, name := range []string{"armscii8", "big5", "cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852",
		"cp866", "cp932", "dec8", "eucjpms", "euckr", "gb2312", "geostd8", "greek", "hebrew", "hp8", "keybcs2",
		"koi8r", "koi8u", "latin2", "latin5", "latin7", "macce", "macroman", "sjis", "swe7", "tis620", "ucs2",
		"ujis", "utf16", "utf16le", "utf32"} {
		if cs, err := charset.GetCharsetInfo(name); cs != nil && err != nil {
			charset.AddCharset(cs)
		}
	}
}
