// The test helper of TestCollectRealProxyProcess: built as "tinyproxy",
// it listens on 0.0.0.0 on a free port, prints the port and holds the
// socket until its stdin closes (the test ends, or dies).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	io.Copy(io.Discard, os.Stdin)
	ln.Close()
}
