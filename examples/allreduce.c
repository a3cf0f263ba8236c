/*
 * The README's example: one process creates the rendezvous id, forks four
 * ranks (the id travels through the fork), and each rank joins the
 * communicator and sums a vector of floats with every other rank. Exits 0
 * when every rank got the right sums; the test suite runs it.
 *
 *   cc allreduce.c -o allreduce -ltutti && ./allreduce
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tutti.h>

#define NRANKS 4
#define COUNT  8

static int run_rank(const tutti_unique_id_t *id, int rank)
{
    tutti_comm_t comm;
    float        x[COUNT];
    int          i, wrong = 0;

    for (i = 0; i < COUNT; i++) {
        x[i] = (float)(rank * i);
    }
    if (tutti_comm_init(NRANKS, id, rank, NULL, &comm) != TUTTI_SUCCESS ||
        tutti_allreduce(x, x, COUNT, TUTTI_FLOAT32, TUTTI_SUM, comm) !=
            TUTTI_SUCCESS) {
        fprintf(stderr, "rank %d: %s\n", rank, tutti_last_error());
        return 1;
    }
    tutti_comm_destroy(comm);
    /* sum over the ranks r of r * i = i * NRANKS * (NRANKS - 1) / 2 */
    for (i = 0; i < COUNT; i++) {
        wrong |= x[i] != (float)(i * NRANKS * (NRANKS - 1) / 2);
    }
    printf("rank %d: x[1] = %g, x[%d] = %g%s\n", rank, x[1], COUNT - 1,
           x[COUNT - 1], wrong ? " (wrong)" : "");
    return wrong;
}

int main(void)
{
    tutti_unique_id_t id;
    int               rank, status, failed = 0;

    /* this process hosts the rendezvous until every rank has joined */
    if (tutti_get_unique_id(&id) != TUTTI_SUCCESS) {
        fprintf(stderr, "tutti_get_unique_id: %s\n", tutti_last_error());
        return 1;
    }
    for (rank = 0; rank < NRANKS; rank++) {
        if (fork() == 0) {
            int rc = run_rank(&id, rank);

            fflush(stdout); /* _exit does not flush stdio */
            _exit(rc);
        }
    }
    while (wait(&status) > 0) {
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    return failed;
}
