// Prints this process's RSS in bytes after importing the modules named on the command line (none: an idle
// process). Run with plain node on dist/ and under tsx on the sources, the difference is what tsx's loader
// costs a process the bench measures, as opposed to the compiled rig that bin/rig.js runs.
import { pathToFileURL } from 'node:url';

for (const m of process.argv.slice(2)) await import(pathToFileURL(m).href);
process.stdout.write(`${process.memoryUsage.rss()}\n`);
