package binlog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/go-mysql-org/go-mysql/replication"
)

var errChecksum = errors.New("checksum mismatch: the binlog is corrupt")

// checksummer verifies the CRC32 that ends each event when the binlog has
// binlog_checksum=CRC32.
type checksummer struct {
	crc bool // the current file's FORMAT_DESCRIPTION event announced CRC32
}

func (c *checksummer) verify(raw []byte) error {
	if len(raw) < replication.EventHeaderSize+4 {
		return nil
	}
	if replication.EventType(raw[4]) == replication.FORMAT_DESCRIPTION_EVENT {
		// The FDE says for itself whether it carries a checksum: its body
		// ends with the algorithm byte and, for CRC32, the checksum. The
		// server sets LOG_EVENT_BINLOG_IN_USE_F in an open file after the
		// checksum was computed, so the flag is cleared before checking.
		alg := raw[len(raw)-5]
		if alg != byte(replication.BINLOG_CHECKSUM_ALG_CRC32) {
			return nil
		}
		flags := binary.LittleEndian.Uint16(raw[17:19]) &^ replication.LOG_EVENT_BINLOG_IN_USE_F
		h := crc32.NewIEEE()
		h.Write(raw[:17])
		var fb [2]byte
		binary.LittleEndian.PutUint16(fb[:], flags)
		h.Write(fb[:])
		h.Write(raw[19 : len(raw)-4])
		if h.Sum32() != binary.LittleEndian.Uint32(raw[len(raw)-4:]) {
			return errChecksum
		}
		return nil
	}
	if !c.crc {
		return nil
	}
	n := len(raw) - 4
	if crc32.ChecksumIEEE(raw[:n]) != binary.LittleEndian.Uint32(raw[n:]) {
		return errChecksum
	}
	return nil
}
