#!/usr/bin/env python3
"""Cache penetration guard and hot-item counting with Ember's RedisBloom-compatible types,
through redis-py's own helpers: r.bf(), r.cf(), r.cms(), r.topk().

A shop keeps a Bloom filter of every product id that exists. A request for an id the filter
has never seen is answered "not found" without asking the database, so floods of random ids
(cache penetration) never reach it. A cuckoo filter holds sold-out ids (they can be removed
again when restocked), a count-min sketch counts views per product and a top-k keeps the
most viewed. The filter is then copied with BF.SCANDUMP/BF.LOADCHUNK (as one would move it to
another server) and the copy must answer every lookup the same.

Every step checks its result; the script exits non-zero when one fails.

    python3 examples/bloom_guard.py --port 6379 [--products 20000] [--probes 20000]
"""

import argparse
import random
import sys

import redis


def check(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--products", type=int, default=20000)
    parser.add_argument("--probes", type=int, default=20000)
    args = parser.parse_args()
    r = redis.Redis(host=args.host, port=args.port)
    r.delete("shop:ids", "shop:ids:copy", "shop:soldout", "shop:views", "shop:top")

    # Penetration guard: every existing id in a Bloom filter at 0.1% false positives.
    bf = r.bf()
    check(bf.create("shop:ids", 0.001, args.products) is True, "BF.RESERVE")
    ids = ["product:%d" % index for index in range(args.products)]
    for start in range(0, len(ids), 1000):
        bf.madd("shop:ids", *ids[start:start + 1000])
    info = bf.info("shop:ids")
    check(info.insertedNum <= args.products and info.filterNum == 1, "BF.INFO %r" % vars(info))
    check(bf.card("shop:ids") == info.insertedNum, "BF.CARD")
    check(all(bf.mexists("shop:ids", *ids[:1000])), "every existing id is found")
    strangers = ["attack:%d" % index for index in range(args.probes)]
    passed = 0
    for start in range(0, len(strangers), 1000):
        passed += sum(bf.mexists("shop:ids", *strangers[start:start + 1000]))
    rate = passed / len(strangers)
    check(rate <= 0.001, "false-positive rate %.5f above 0.001" % rate)
    print("bf: %d ids, %d random ids probed: %d reached the database (%.4f%%)"
          % (args.products, len(strangers), passed, 100 * rate))

    # Copy the filter chunk by chunk, as redis-py documents SCANDUMP/LOADCHUNK.
    chunks = []
    iterator = 0
    while True:
        iterator, data = bf.scandump("shop:ids", iterator)
        if iterator == 0:
            break
        chunks.append((iterator, data))
    for iterator, data in chunks:
        bf.loadchunk("shop:ids:copy", iterator, data)
    probes = ids[:2000] + strangers[:2000]
    check(bf.mexists("shop:ids", *probes) == bf.mexists("shop:ids:copy", *probes),
          "the copy answers as the original")
    check(vars(bf.info("shop:ids:copy")) == vars(bf.info("shop:ids")), "the copy's BF.INFO")
    print("bf: copied in %d SCANDUMP chunks, the copy answers all %d lookups alike"
          % (len(chunks), len(probes)))

    # Sold-out ids: a cuckoo filter, since they are removed again on restock.
    cf = r.cf()
    check(cf.create("shop:soldout", 1000) is True, "CF.RESERVE")
    check(cf.add("shop:soldout", "product:7") == 1, "CF.ADD")
    check(cf.addnx("shop:soldout", "product:7") == 0, "CF.ADDNX of an item there")
    check(cf.insert("shop:soldout", ["product:8", "product:9"]) == [1, 1], "CF.INSERT")
    check(cf.count("shop:soldout", "product:8") == 1, "CF.COUNT")
    check(cf.delete("shop:soldout", "product:8") == 1, "CF.DEL on restock")
    check(cf.mexists("shop:soldout", "product:7", "product:8") == [1, 0], "CF.MEXISTS")
    cinfo = cf.info("shop:soldout")
    check((cinfo.insertedNum, cinfo.deletedNum) == (2, 1), "CF.INFO %r" % vars(cinfo))
    print("cf: sold out %s, restocked product:8" % ["product:7", "product:9"])

    # Views: a count-min sketch counts every view, a top-k keeps the 5 most viewed.
    cms, topk = r.cms(), r.topk()
    check(cms.initbyprob("shop:views", 0.001, 0.01) is True, "CMS.INITBYPROB")
    check(topk.reserve("shop:top", 5, 2000, 7, 0.925) is True, "TOPK.RESERVE")
    rng = random.Random(7)
    weights = [1.0 / (rank + 1) ** 1.2 for rank in range(500)]
    views = rng.choices(range(500), weights=weights, k=20000)
    truth = {}
    for start in range(0, len(views), 500):
        batch = ["product:%d" % index for index in views[start:start + 500]]
        for item in batch:
            truth[item] = truth.get(item, 0) + 1
        cms.incrby("shop:views", batch, [1] * len(batch))
        topk.add("shop:top", *batch)
    hottest = sorted(truth, key=truth.get, reverse=True)[:5]
    counted = cms.query("shop:views", *hottest)
    check(all(counted[i] >= truth[item] for i, item in enumerate(hottest)),
          "a count-min sketch never counts less than the truth")
    check(cms.info("shop:views").count == len(views), "CMS.INFO count")
    listed = topk.list("shop:top")
    check(len(listed) == 5 and hottest[0] in listed, "TOPK.LIST %r against %r" % (listed, hottest))
    check(topk.query("shop:top", hottest[0]) == [1], "TOPK.QUERY")
    with_counts = topk.list("shop:top", withcount=True)
    check(len(with_counts) == 10, "TOPK.LIST WITHCOUNT")
    check(topk.info("shop:top").k == 5, "TOPK.INFO")
    print("cms/topk: %d views; most viewed %s (%d views, sketch says %d); top 5 %s"
          % (len(views), hottest[0], truth[hottest[0]], counted[0], listed))
    print("bloom_guard: all checks passed")


if __name__ == "__main__":
    main()
