# Run in a copy of this directory before building: what git cannot store.
chmod 0750 src && chmod 0700 src/sub && chmod 0600 src/a.txt && chmod 0755 f2.txt
ln -f hard1 hard2
echo secret > ignored/secret.txt
echo log > build.log
