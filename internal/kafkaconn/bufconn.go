package kafkaconn

import (
	"bufio"
	"context"
	"net"
	"time"
)

// connReadBuffer is the read buffer under each broker connection.
const connReadBuffer = 256 << 10

// bufferedConn reads a broker connection through a large buffer. kafka-go
// reads a fetch response value by value through a 4 KiB buffer of its own,
// so a 1 MiB fetch would cost some 250 read system calls; under this buffer
// its reads are copies, and a system call takes whatever the socket holds,
// up to connReadBuffer. Writes, deadlines and Close go to the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// BufferedDial dials like kafka-go's own dialer (TCP, dual stack,
// keepalive) and returns a connection read through a large buffer, for
// kafka.Dialer's DialFunc; kafka-go adds TLS and SASL on top. deid's broker
// connections are made with it, and so is the benchmark's bare consumer,
// so that the two read alike.
func BufferedDial(keepAlive time.Duration) func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: keepAlive} // dual stack (fast fallback) by default
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer)}, nil
	}
}
