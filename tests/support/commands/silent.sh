#!/bin/sh
# A command agent that ends without an output line.
echo "nothing to say"
