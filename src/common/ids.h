/* ids.h -- the ids that name manta's entities.  All are opaque bytes:
 *   worker, node, actor ids: 16 random bytes
 *   task id: 8-byte prefix unique to the submitting process + 8-byte counter
 *   object id: task id + u32 index (little endian); task returns use 1..n,
 *              objects made by put use index 0 with a fresh task id.
 *   job id: u32 counter handed out by the control store. */
#ifndef MT_IDS_H
#define MT_IDS_H

#include <stdint.h>
#include <string.h>

#define MT_WORKER_ID_LEN 16
#define MT_NODE_ID_LEN 16
#define MT_ACTOR_ID_LEN 16
#define MT_TASK_ID_LEN 16
#define MT_OBJECT_ID_LEN 20
#define MT_FN_ID_LEN 16

typedef struct mt_wid { uint8_t b[MT_WORKER_ID_LEN]; } mt_wid;
typedef struct mt_nid { uint8_t b[MT_NODE_ID_LEN]; } mt_nid;
typedef struct mt_aid { uint8_t b[MT_ACTOR_ID_LEN]; } mt_aid;
typedef struct mt_tid { uint8_t b[MT_TASK_ID_LEN]; } mt_tid;
typedef struct mt_oid { uint8_t b[MT_OBJECT_ID_LEN]; } mt_oid;

static inline mt_oid mt_oid_for(const mt_tid *t, uint32_t index)
{
    mt_oid o;
    memcpy(o.b, t->b, MT_TASK_ID_LEN);
    o.b[16] = (uint8_t)index;
    o.b[17] = (uint8_t)(index >> 8);
    o.b[18] = (uint8_t)(index >> 16);
    o.b[19] = (uint8_t)(index >> 24);
    return o;
}

static inline uint32_t mt_oid_index(const mt_oid *o)
{
    return (uint32_t)o->b[16] | (uint32_t)o->b[17] << 8 | (uint32_t)o->b[18] << 16 |
           (uint32_t)o->b[19] << 24;
}

static inline mt_tid mt_oid_task(const mt_oid *o)
{
    mt_tid t;
    memcpy(t.b, o->b, MT_TASK_ID_LEN);
    return t;
}

#define MT_ID_EQ(x, y) (memcmp((x).b, (y).b, sizeof((x).b)) == 0)
#define MT_ID_IS_NIL(x) mt_id_is_nil((x).b, sizeof((x).b))

static inline int mt_id_is_nil(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

#endif
