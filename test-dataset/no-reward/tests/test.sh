#!/bin/sh
echo "this verifier forgets to write a reward"
