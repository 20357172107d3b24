#!/bin/sh
echo working; sleep 1000 & setsid sleep 1001 & nohup sleep 1002 >/dev/null 2>&1 &
sleep 1003
