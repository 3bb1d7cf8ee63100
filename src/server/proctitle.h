/* Process titles as ps shows them: "opsd: master", "opsd: worker",
 * "opsd: jobs" (README "The process model and signals"). */
#ifndef OPSD_PROCTITLE_H
#define OPSD_PROCTITLE_H

/* Moves environ out of the way so argv's memory can hold the title. Call
 * first thing in main, before anything reads getenv pointers. */
void proctitle_init(int argc, char **argv);
void proctitle_set(const char *title);

#endif
