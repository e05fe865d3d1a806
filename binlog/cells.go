package binlog

import (
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Cells converts the cells of rows read with SelectExpr, as CellValue
// does, with the values' memory taken from an arena: text in shared
// chunks, numbers boxed in slabs, instead of two allocations per value. A
// snapshot reads millions of rows, and the allocator and the collector
// were a third of its CPU. What it returns is never written again, and
// lives as long as anything else of its chunk is used. A Cells belongs to
// one goroutine.
type Cells struct {
	a    arena
	conv []func([]byte, *arena) (Value, error)
}

// NewCells converts cells of cols, in their order.
func NewCells(cols []Column) *Cells {
	c := &Cells{conv: make([]func([]byte, *arena) (Value, error), len(cols))}
	for i := range cols {
		c.conv[i] = cellValueIn(&cols[i])
	}
	return c
}

// Value converts the cell of column i (not NULL): CellValue's value. It
// never aliases b.
func (c *Cells) Value(i int, b []byte) (Value, error) { return c.conv[i](b, &c.a) }

// cellValueIn is CellValue with the value's memory from an arena, for the
// types a table is mostly made of; the others are CellValue's.
func cellValueIn(c *Column) func([]byte, *arena) (Value, error) {
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG:
		if c.Unsigned {
			return func(b []byte, a *arena) (Value, error) {
				v, err := strconv.ParseUint(string(b), 10, 64)
				if err != nil {
					return nil, err
				}
				return a.uint(v), nil
			}
		}
		return parseIntIn
	case mysql.MYSQL_TYPE_YEAR:
		return parseIntIn
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return func(b []byte, a *arena) (Value, error) { return a.decimal(b), nil }
	case mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_DATETIME,
		mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_TIME:
		return func(b []byte, a *arena) (Value, error) { return a.text(b), nil }
	case mysql.MYSQL_TYPE_BIT, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_TIMESTAMP,
		mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		return plainCell(c)
	}
	if c.Type == mysql.MYSQL_TYPE_STRING && (c.BaseType == "uuid" || c.BaseType == "inet6" || c.BaseType == "inet4") {
		return plainCell(c)
	}
	return bytesValueIn(c)
}

// plainCell is CellValue(c), each value allocated on its own.
func plainCell(c *Column) func([]byte, *arena) (Value, error) {
	conv := CellValue(c)
	return func(b []byte, _ *arena) (Value, error) { return conv(b) }
}

func parseIntIn(b []byte, a *arena) (Value, error) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return nil, err
	}
	return a.int(v), nil
}
