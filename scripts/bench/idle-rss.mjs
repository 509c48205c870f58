// Prints this process's RSS in bytes once it has started and done nothing: run once with plain node and
// once under tsx, the difference is what tsx's loader costs any process the bench measures.
process.stdout.write(`${process.memoryUsage.rss()}\n`);
