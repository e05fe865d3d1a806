package mysqlconn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// greeting is an Initial Handshake Packet with capabilities caps and the
// MariaDB extended capabilities ext.
func greeting(caps, ext uint32) []byte {
	p := append([]byte{10}, "5.5.5-10.11.19-MariaDB\x00"...)
	p = append(p, 1, 0, 0, 0)    // connection id
	p = append(p, "abcdefgh"...) // scramble, first part
	p = append(p, 0)             // filler
	p = binary.LittleEndian.AppendUint16(p, uint16(caps))
	p = append(p, 45, 2, 0) // collation, status
	p = binary.LittleEndian.AppendUint16(p, uint16(caps>>16))
	p = append(p, 21, 0, 0, 0, 0, 0, 0) // auth data length, reserved
	p = binary.LittleEndian.AppendUint32(p, ext)
	p = append(p, "ijklmnopqrst\x00mysql_native_password\x00"...)
	return append([]byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), 0}, p...)
}

// TestOffersBulk reads the bulk command's offer from servers' greetings.
func TestOffersBulk(t *testing.T) {
	const mariadb = capProtocol41 | capSSL | capDeprecateEOF
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"MariaDB", greeting(mariadb, extBulk|1<<4), true},
		{"MariaDB without it", greeting(mariadb, 1<<4), false},
		{"MySQL (CLIENT_MYSQL): no extended capabilities", greeting(mariadb|capMySQL, extBulk), false},
		{"truncated", greeting(mariadb, extBulk)[:30], false},
		{"not protocol 10", append([]byte{1, 0, 0, 0}, 9), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := offersBulk(bufio.NewReader(bytes.NewReader(tc.data))); got != tc.want {
				t.Errorf("offersBulk = %v, want %v", got, tc.want)
			}
		})
	}
}

// recorder is a net.Conn that keeps what is written to it.
type recorder struct {
	net.Conn
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) { return r.out.Write(p) }

// TestBulkHandshake: the handshake response asks for the bulk command
// only when the server offers it, the client is a MariaDB one and the
// connection is not switching to TLS.
func TestBulkHandshake(t *testing.T) {
	response := func(caps uint32, seq byte) []byte {
		p := binary.LittleEndian.AppendUint32(nil, caps)
		p = append(p, make([]byte, 4+1+23)...)
		p = binary.LittleEndian.AppendUint32(p[:28], 1<<4) // the driver's extended capabilities
		p = append(p, "root\x00"...)
		return append([]byte{byte(len(p)), 0, 0, seq}, p...)
	}
	const client = capProtocol41 | capDeprecateEOF
	for _, tc := range []struct {
		name    string
		offered bool
		packet  []byte
		bulk    bool
	}{
		{"asked", true, response(client, 1), true},
		{"not offered", false, response(client, 1), false},
		{"a MySQL client", true, response(client|capMySQL, 1), false},
		{"TLS request", true, response(client|capSSL, 1), false},
		{"not the response", true, response(client, 2), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			c := &BulkConn{bufferedConn: &bufferedConn{Conn: r}, greeted: true, offered: tc.offered}
			in := bytes.Clone(tc.packet)
			if _, err := c.Write(in); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, tc.packet) {
				t.Error("Write changed the caller's bytes")
			}
			ext := binary.LittleEndian.Uint32(r.out.Bytes()[4+28:])
			if c.bulk != tc.bulk || (ext&extBulk != 0) != tc.bulk || ext&(1<<4) == 0 {
				t.Errorf("bulk %v, extended capabilities sent %#x", c.bulk, ext)
			}
			if !c.deprecateEOF && tc.bulk {
				t.Error("CLIENT_DEPRECATE_EOF not noted")
			}
			if !bytes.Equal(r.out.Bytes()[:4+28], tc.packet[:4+28]) || !bytes.Equal(r.out.Bytes()[4+32:], tc.packet[4+32:]) {
				t.Error("other bytes of the response changed")
			}
		})
	}
}
