package kafkaconn

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// A connection from BufferedDial delivers the stream intact, read the way
// kafka-go reads it (small reads through a 4 KiB buffer), in far fewer
// reads of the socket than kafka-go alone would make, and passes deadlines
// through.
func TestBufferedDialKeepsTheStreamAndReadsInBulk(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(want)
		time.Sleep(time.Second) // then nothing, until the reader's deadline
	}()

	c, err := BufferedDial(time.Minute)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bc := c.(*bufferedConn)
	counted := &countingConn{Conn: bc.Conn}
	bc.r.Reset(counted)
	kafkaSide := bufio.NewReader(c) // kafka-go's own 4 KiB buffer
	got := make([]byte, len(want))
	for off := 0; off < len(got); {
		n, err := kafkaSide.Read(got[off:min(off+500, len(got))]) // value by value
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		off += n
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the stream came through changed")
	}
	if most := len(want) / 4096 / 4; counted.reads > most {
		t.Errorf("%d reads of the socket for %d bytes; want at most %d (kafka-go's 4 KiB buffer alone makes %d)",
			counted.reads, len(want), most, len(want)/4096)
	}

	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := kafkaSide.Read(make([]byte, 1)); err == nil || !isTimeout(err) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
}

type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.Conn.Read(p)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
