# escape=`
# The escape directive: ` continues lines and escapes, \ is an ordinary character.
FROM rollout-test/busybox:1
ENV WINPATH=C:\dir\file `
    OTHER=x
RUN echo "$WINPATH" > /winpath && `
    echo done > /done
COPY back\slash.txt /c/
