#!/bin/sh
# A command agent that breaks the protocol, then would run on.
echo "not json" >&3
sleep 60
