# The archives are made here (owners and modes that git cannot store).
mkdir -p t/tree/sub && echo one > t/tree/one.txt && echo two > t/tree/sub/two.txt
chmod 0640 t/tree/one.txt && ln -s one.txt t/tree/link
tar --owner=12 --group=34 -C t -cf plain.tar tree
tar --owner=0 --group=0 -C t -czf archive.tar.gz tree
rm -rf t
