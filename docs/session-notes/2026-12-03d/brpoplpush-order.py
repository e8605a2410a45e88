#!/usr/bin/env python3
# Reproduces the ordering race of Redis's list test "BRPOPLPUSH with multiple blocked clients":
# two clients block (the first with a wrong-type destination), a third pushes; when the second is
# served first, the first stays blocked (a "hang"). Usage: python3 brpoplpush-order.py PORT RUNS GAP_S

import socket, sys, time
port=int(sys.argv[1]); n=int(sys.argv[2])
def conn():
    s=socket.create_connection(("127.0.0.1",port)); s.settimeout(3); return s
def cmd(*a):
    out=b"*%d\r\n"%len(a)
    for x in a:
        x=x.encode() if isinstance(x,str) else x
        out+=b"$%d\r\n%s\r\n"%(len(x),x)
    return out
hangs={"rd1":0,"rd2":0}
for i in range(n):
    r=conn(); rd1=conn(); rd2=conn()
    # like redis_deferring_client: a PING answered first
    for c in (rd1,rd2):
        c.sendall(cmd("PING")); c.recv(100)
    r.sendall(cmd("DEL","blist{t}","target1{t}","target2{t}")); r.recv(100)
    r.sendall(cmd("SET","target1{t}","nolist")); r.recv(100)
    rd1.sendall(cmd("BRPOPLPUSH","blist{t}","target1{t}","0"))
    time.sleep(float(sys.argv[3]))
    rd2.sendall(cmd("BRPOPLPUSH","blist{t}","target2{t}","0"))
    time.sleep(float(sys.argv[3]))
    r.sendall(cmd("LPUSH","blist{t}","foo")); r.recv(100)
    for name,c in (("rd1",rd1),("rd2",rd2)):
        try: c.recv(100)
        except socket.timeout: hangs[name]+=1
    for c in (r,rd1,rd2): c.close()
print("runs",n,"hangs",hangs)
