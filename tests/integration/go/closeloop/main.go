// SPDX-License-Identifier: MIT
// closeloop: opens and closes an amqp091-go connection N times against the
// broker at URL, optionally refreshing its secret on each, and prints one
// line per round ("ok" or the error) and a final "clean K/N". A round is
// clean when Close() returns nil and the NotifyClose channel (what
// reconnect-on-close loops wait on) is closed without an error. The exit
// status is 0 only when every round was clean.
package main

import (
	"flag"
	"fmt"
	"os"

	amqp "github.com/rabbitmq/amqp091-go"
)

// round opens a connection and a channel, optionally updates the secret,
// and closes; the error is the first one seen, Close's and NotifyClose's
// included.
func round(url string, updateSecret bool) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return err
	}
	if updateSecret {
		if err := conn.UpdateSecret("guest", "token refresh"); err != nil {
			conn.Close()
			return err
		}
	}
	if err := ch.Close(); err != nil {
		conn.Close()
		return err
	}
	if err := conn.Close(); err != nil {
		return err
	}
	if err, ok := <-closed; ok {
		return fmt.Errorf("NotifyClose: %v", err)
	}
	return nil
}

func main() {
	url := flag.String("url", "amqp://guest:guest@127.0.0.1:5672/", "broker URL")
	n := flag.Int("n", 20, "rounds")
	updateSecret := flag.Bool("update-secret", false, "call UpdateSecret in each round")
	flag.Parse()
	clean := 0
	for i := 0; i < *n; i++ {
		if err := round(*url, *updateSecret); err != nil {
			fmt.Printf("round %d: %v\n", i+1, err)
			continue
		}
		clean++
		fmt.Printf("round %d: ok\n", i+1)
	}
	fmt.Printf("clean %d/%d\n", clean, *n)
	if clean != *n {
		os.Exit(1)
	}
}
