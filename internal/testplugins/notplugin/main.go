// Command notplugin is a test program that is not a plugin at all.
package main

import "fmt"

func main() {
	fmt.Println("I am not a plugin")
}
