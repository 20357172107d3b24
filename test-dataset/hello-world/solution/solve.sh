#!/bin/sh
set -e
echo "Hello, world!" > /app/hello.txt
echo "wrote /app/hello.txt"
