// Apache Flink's own window operator on test streams: the oracle for bench/flink_semantics.py.
//
// It reads cases from standard input and runs each as a Flink job in a local mini cluster
// (parallelism 1): a source that emits the case's elements (each with its timestamp) and
// watermarks in the order given, then ends (Flink's legacy source then emits
// Watermark.MAX_WATERMARK), keyBy(key), window(assigner), allowedLateness, sideOutputLateData,
// trigger EventTimeTrigger (accumulating) or PurgingTrigger.of(EventTimeTrigger) (discarding), and
// aggregate(sum | count | min | max, a ProcessWindowFunction that writes each firing out).
// A case with a checkpoint runs with checkpointing on and one restart: the source holds the
// checkpoint lock except where the script has its checkpoint, so the one checkpoint that counts is
// taken there; the failure is an element the trigger throws on (once), so everything before it has
// been through the window operator; the job then restarts from the checkpoint (window state and
// timers restored, the watermark back to Long.MIN_VALUE) and the source replays from there.
// What was written out before the failure stays written (the sink prints).
//
// Input, one case after another:
//   CASE <id> <tumbling|sliding|session> <size> <slide> <offset> <lateness> <accumulating|discarding> <aggregate>
//   A <key> <timestamp> <value>        an element
//   W <watermark>                      a watermark
//   C                                  a checkpoint, taken here and nowhere else
//   F                                  a failure (once): the job restarts from the last checkpoint, and
//                                      the source replays the script from there
//   END
// (a session's <size> is its gap; <slide> is only read for sliding windows, <offset> not for sessions.)
//
// Output, per case, in the order Flink emitted it:
//   P <id> <key> <start> <end> <EARLY|ON_TIME|LATE> <value>    a firing of a window
//   L <id> <key> <timestamp> <value>                          an element sent to the late side output
//   DONE <id>
//   FAILED <id> <what Flink raised>                           in place of DONE, if the job failed
//
// A firing's timing is read from the trigger call that caused it (a thin wrapper around Flink's
// trigger records it): onEventTime at the window's maxTimestamp is ON_TIME unless the window has
// fired at or past its end before (trigger state, so checkpointed); onElement before the
// watermark reached maxTimestamp EARLY; any other LATE. Flink has no panes; this is weir's naming.
//
// Times are plain longs: Flink's windows are whole numbers of milliseconds, and the case's numbers
// (weir's microseconds) are given to Flink as they are, so every boundary is exact.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.restartstrategy.RestartStrategies;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.datastream.WindowedStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.SinkFunction;
import org.apache.flink.streaming.api.functions.source.SourceFunction;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.api.windowing.assigners.EventTimeSessionWindows;
import org.apache.flink.streaming.api.windowing.assigners.SlidingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.WindowAssigner;
import org.apache.flink.streaming.api.windowing.triggers.EventTimeTrigger;
import org.apache.flink.streaming.api.windowing.triggers.PurgingTrigger;
import org.apache.flink.streaming.api.windowing.triggers.Trigger;
import org.apache.flink.streaming.api.windowing.triggers.TriggerResult;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

public final class WindowOracle {

    /** Which trigger call is running on this task thread (see Observed). */
    static final ThreadLocal<long[]> CALL = ThreadLocal.withInitial(() -> new long[] {0});

    static final TypeInformation<Tuple3<Long, Long, Long>> ELEMENT = Types.TUPLE(Types.LONG, Types.LONG, Types.LONG);

    /** The case's script: elements (key, timestamp, value), watermarks, a checkpoint, a failure. */
    static final class Script implements SourceFunction<Tuple3<Long, Long, Long>>, CheckpointedFunction,
            CheckpointListener {
        private final ArrayList<long[]> steps;
        private transient ListState<Integer> saved;
        private transient int position; // the next step; what a checkpoint keeps
        private transient Map<Long, Integer> taken; // checkpoint id -> the position it kept
        private transient volatile int completed; // the position of the last checkpoint completed

        Script(ArrayList<long[]> steps) {
            this.steps = steps;
        }

        @Override
        public void initializeState(FunctionInitializationContext context) throws Exception {
            saved = context.getOperatorStateStore().getListState(new ListStateDescriptor<>("position", Types.INT));
            position = 0;
            for (Integer p : saved.get()) {
                position = p;
            }
            taken = new HashMap<>();
            completed = -1;
        }

        @Override
        public void snapshotState(FunctionSnapshotContext context) throws Exception {
            saved.update(List.of(position));
            taken.put(context.getCheckpointId(), position);
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) {
            Integer at = taken.remove(checkpointId);
            if (at != null) {
                completed = at;
            }
        }

        @Override
        public void run(SourceContext<Tuple3<Long, Long, Long>> ctx) throws Exception {
            Object lock = ctx.getCheckpointLock();
            // The lock is held throughout, so a checkpoint is taken only where the script has one:
            // there the source waits on the lock (which lets the task take it) until a checkpoint
            // of this position has completed.
            synchronized (lock) {
                while (position < steps.size()) {
                    long[] step = steps.get(position);
                    position++;
                    if (step[0] == 0 || step[0] == 3) { // an element; a failure is an element the trigger fails on
                        ctx.collectWithTimestamp(Tuple3.of(step[1], step[2], step[3]), step[2]);
                    } else if (step[0] == 1) {
                        ctx.emitWatermark(new Watermark(step[1]));
                    } else {
                        long until = System.nanoTime() + 30_000_000_000L;
                        while (completed != position) {
                            if (System.nanoTime() > until) {
                                throw new IllegalStateException("no checkpoint completed in 30 s at step " + position);
                            }
                            lock.wait(1);
                        }
                    }
                }
            }
        }

        @Override
        public void cancel() {}
    }

    static final class KeyOf implements KeySelector<Tuple3<Long, Long, Long>, Long> {
        @Override
        public Long getKey(Tuple3<Long, Long, Long> element) {
            return element.f0;
        }
    }

    /** Cases whose planned failure has happened (the failure is once per case, not again on restore). */
    static final Set<String> FAILED = ConcurrentHashMap.newKeySet();

    /** Key of the element that stands for a planned failure: never a case's key, and left out of the output. */
    static final long FAILURE = -1;

    /**
     * Flink's own trigger, its calls recorded for the window function to read: {0} onElement,
     * {1} onEventTime at the window's maxTimestamp when the window has not fired at or past its
     * end before (ON_TIME), {2} any other onEventTime. Whether it has is trigger state, so it is
     * checkpointed: after a restore, a window that had fired at its maxTimestamp, or LATE on an
     * element, before the checkpoint fires at its maxTimestamp again (the watermark starts again
     * from Long.MIN_VALUE), and that firing is LATE. That is weir's pane timing, and Beam's
     * (PaneInfoTracker.describePane: a pane after an ON_TIME or LATE one is LATE). The trigger
     * also throws on the planned failure's element, once per case: after every element and
     * watermark before it has been through the window operator.
     */
    static final class Observed extends Trigger<Object, TimeWindow> {
        private final Trigger<Object, TimeWindow> inner;
        private final String id;
        private final ValueStateDescriptor<Boolean> passed = new ValueStateDescriptor<>("fired at or past its end",
                Types.BOOLEAN);

        Observed(Trigger<Object, TimeWindow> inner, String id) {
            this.inner = inner;
            this.id = id;
        }

        @Override
        @SuppressWarnings("unchecked")
        public TriggerResult onElement(Object element, long timestamp, TimeWindow window, TriggerContext ctx)
                throws Exception {
            if (((Tuple3<Long, Long, Long>) element).f0 == FAILURE && FAILED.add(id)) {
                throw new IllegalStateException("the planned failure");
            }
            TriggerResult result = inner.onElement(element, timestamp, window, ctx);
            if (result.isFire() && window.maxTimestamp() <= ctx.getCurrentWatermark()) {
                ctx.getPartitionedState(passed).update(true); // a LATE firing: no ON_TIME one after it
            }
            CALL.set(new long[] {0});
            return result;
        }

        @Override
        public TriggerResult onEventTime(long time, TimeWindow window, TriggerContext ctx) throws Exception {
            TriggerResult result = inner.onEventTime(time, window, ctx);
            boolean atEnd = time == window.maxTimestamp() && result.isFire();
            ValueState<Boolean> state = ctx.getPartitionedState(passed);
            CALL.set(new long[] {atEnd && state.value() == null ? 1 : 2});
            if (atEnd) {
                state.update(true);
            }
            return result;
        }

        @Override
        public TriggerResult onProcessingTime(long time, TimeWindow window, TriggerContext ctx) throws Exception {
            return inner.onProcessingTime(time, window, ctx);
        }

        @Override
        public boolean canMerge() {
            return inner.canMerge();
        }

        @Override
        public void onMerge(TimeWindow window, OnMergeContext ctx) throws Exception {
            inner.onMerge(window, ctx); // (the merged window is new: it has not fired on time)
        }

        @Override
        public void clear(TimeWindow window, TriggerContext ctx) throws Exception {
            ctx.getPartitionedState(passed).clear();
            inner.clear(window, ctx);
        }
    }

    static final class Aggregate implements AggregateFunction<Tuple3<Long, Long, Long>, Long, Long> {
        private final String kind;

        Aggregate(String kind) {
            this.kind = kind;
        }

        @Override
        public Long createAccumulator() {
            switch (kind) {
                case "min": return Long.MAX_VALUE;
                case "max": return Long.MIN_VALUE;
                default: return 0L;
            }
        }

        @Override
        public Long add(Tuple3<Long, Long, Long> element, Long acc) {
            switch (kind) {
                case "count": return acc + 1;
                case "min": return Math.min(acc, element.f2);
                case "max": return Math.max(acc, element.f2);
                default: return acc + element.f2;
            }
        }

        @Override
        public Long getResult(Long acc) {
            return acc;
        }

        @Override
        public Long merge(Long a, Long b) {
            switch (kind) {
                case "min": return Math.min(a, b);
                case "max": return Math.max(a, b);
                default: return a + b;
            }
        }
    }

    static final class Emit extends ProcessWindowFunction<Long, String, Long, TimeWindow> {
        private final String id;

        Emit(String id) {
            this.id = id;
        }

        @Override
        public void process(Long key, Context ctx, Iterable<Long> values, Collector<String> out) {
            TimeWindow w = ctx.window();
            if (key == FAILURE) {
                return;
            }
            long call = CALL.get()[0];
            String timing = call == 1 ? "ON_TIME" : call == 0 && w.maxTimestamp() > ctx.currentWatermark() ? "EARLY" : "LATE";
            out.collect("P " + id + " " + key + " " + w.getStart() + " " + w.getEnd() + " " + timing + " "
                    + values.iterator().next());
        }
    }

    static final class Print implements SinkFunction<String> {
        @Override
        public void invoke(String line, Context ctx) {
            synchronized (System.out) {
                System.out.println(line);
            }
        }
    }

    static final class Late implements SinkFunction<Tuple3<Long, Long, Long>> {
        private final String id;

        Late(String id) {
            this.id = id;
        }

        @Override
        public void invoke(Tuple3<Long, Long, Long> e, Context ctx) {
            synchronized (System.out) {
                System.out.println("L " + id + " " + e.f0 + " " + e.f1 + " " + e.f2);
            }
        }
    }

    static WindowAssigner<Object, TimeWindow> assigner(String kind, long size, long slide, long offset) {
        switch (kind) {
            case "tumbling": return TumblingEventTimeWindows.of(Duration.ofMillis(size), Duration.ofMillis(offset));
            case "sliding": return SlidingEventTimeWindows.of(Duration.ofMillis(size), Duration.ofMillis(slide),
                    Duration.ofMillis(offset));
            case "session": return EventTimeSessionWindows.withGap(Duration.ofMillis(size));
            default: throw new IllegalArgumentException("windows: " + kind);
        }
    }

    static void run(MiniCluster cluster, String[] spec, ArrayList<long[]> steps) throws Exception {
        String id = spec[1];
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1);
        if (steps.stream().anyMatch(step -> step[0] == 2)) { // a checkpoint: taken only where the script says
            env.enableCheckpointing(10);
            env.setRestartStrategy(RestartStrategies.fixedDelayRestart(1, 0L));
        } else {
            env.setRestartStrategy(RestartStrategies.noRestart());
        }
        DataStream<Tuple3<Long, Long, Long>> source = env.addSource(new Script(steps), "script", ELEMENT);
        OutputTag<Tuple3<Long, Long, Long>> late = new OutputTag<>("late", ELEMENT);
        Trigger<Object, TimeWindow> trigger = new Observed(EventTimeTrigger.create(), id);
        WindowedStream<Tuple3<Long, Long, Long>, Long, TimeWindow> windowed = source
                .keyBy(new KeyOf())
                .window(assigner(spec[2], Long.parseLong(spec[3]), Long.parseLong(spec[4]), Long.parseLong(spec[5])))
                .allowedLateness(Duration.ofMillis(Long.parseLong(spec[6])))
                .sideOutputLateData(late)
                .trigger(spec[7].equals("discarding") ? PurgingTrigger.of(trigger) : trigger);
        SingleOutputStreamOperator<String> panes = windowed.aggregate(
                new Aggregate(spec[8]), new Emit(id), Types.LONG, Types.LONG, Types.STRING);
        panes.addSink(new Print());
        panes.getSideOutput(late).addSink(new Late(id));
        cluster.executeJobBlocking(env.getStreamGraph().getJobGraph());
        System.out.println("DONE " + id);
        System.out.flush();
    }

    public static void main(String[] args) {
        int status = 0;
        try {
            cases();
        } catch (Throwable e) {
            System.err.println("WindowOracle: " + e);
            status = 1;
        }
        System.exit(status); // (the mini cluster's threads would keep a failed JVM waiting)
    }

    static void cases() throws Exception {
        // one mini cluster for every case: starting one costs over a second, a job on it a tenth
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setNumTaskManagers(1).setNumSlotsPerTaskManager(1).withRandomPorts().build());
        cluster.start();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String[] spec = null;
        ArrayList<long[]> steps = new ArrayList<>();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] f = line.trim().split("\\s+");
            switch (f[0]) {
                case "CASE": spec = f; steps = new ArrayList<>(); break;
                case "A": steps.add(new long[] {0, Long.parseLong(f[1]), Long.parseLong(f[2]), Long.parseLong(f[3])}); break;
                case "W": steps.add(new long[] {1, Long.parseLong(f[1])}); break;
                case "C": steps.add(new long[] {2}); break;
                case "F": steps.add(new long[] {3, FAILURE, 1_000_000_000L, 0}); break; // (never late)
                case "END":
                    try {
                        run(cluster, spec, steps);
                    } catch (Exception e) { // a case Flink fails on is reported, and the rest still run
                        Throwable cause = e;
                        while (cause.getCause() != null) {
                            cause = cause.getCause();
                        }
                        System.out.println("FAILED " + spec[1] + " " + cause.toString().replace('\n', ' '));
                    }
                    break;
                default: break;
            }
        }
        cluster.close();
    }
}
