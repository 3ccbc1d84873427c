package riverflink;

import org.apache.flink.api.common.state.BroadcastState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.typeinfo.BasicTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.streaming.api.functions.python.DataStreamPythonFunctionInfo;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

import java.util.Map;

/**
 * The batched learner with a second, broadcast input: the versions of the global model.
 *
 * <p>Why: Flink 2 has no loops in a DataStream graph, so the global model learns in its own
 * operator beside the learner, and every learner subtask needs its latest version. A version
 * is a {@code Row(version LONG, model BYTES)}; the latest one is kept in operator broadcast
 * state, so every checkpoint holds the version each subtask answered with, and a subtask
 * added by a rescale starts from a copy.
 *
 * <p>Python is never called for a version: the lines that came before it are handed over
 * first, under the version before, and Python asks for the current version once per batch
 * ({@code ctx.globalVersion()}), and for its bytes only when it changed. A version no newer
 * than the current one (an in-flight copy restored from an unaligned checkpoint) is dropped.
 *
 * <p>A two-input task ends each input on its own and calls {@code endInput()} once per input;
 * the learner writes back and closes Python only when both have ended, whichever ends first.
 */
public class GlobalAwareBatchedOperator extends BatchedPythonKeyedProcessOperator
        implements TwoInputStreamOperator<Row, Row, String> {

    private static final long serialVersionUID = 1L;

    /** Part of the savepoint contract: the operator state a learner keeps its global version in. */
    static final MapStateDescriptor<Long, byte[]> GLOBAL_MODEL =
            new MapStateDescriptor<>("global_model", BasicTypeInfo.LONG_TYPE_INFO,
                    PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);

    private transient BroadcastState<Long, byte[]> versions;
    private transient volatile long globalVersion; // read by metric reporters
    private transient byte[] globalModel;
    private transient int inputsEnded;

    public GlobalAwareBatchedOperator(
            Configuration config,
            DataStreamPythonFunctionInfo pythonFunctionInfo,
            TypeInformation<Row> batchTypeInfo,
            TypeInformation<String> outputTypeInfo,
            int maxLines,
            long maxDelayMs,
            String[] liveKeyStates) {
        super(config, pythonFunctionInfo, batchTypeInfo, outputTypeInfo, maxLines, maxDelayMs, liveKeyStates);
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        versions = context.getOperatorStateStore().getBroadcastState(GLOBAL_MODEL);
        globalVersion = 0; // set here: a transient field's initializer does not run on a TaskManager
        globalModel = null;
        inputsEnded = 0;
        for (Map.Entry<Long, byte[]> entry : versions.entries()) {
            if (entry.getKey() > globalVersion) {
                globalVersion = entry.getKey();
                globalModel = entry.getValue();
            }
        }
        if (context.isRestored()) {
            LOG.info("global model version {} restored", globalVersion);
        }
    }

    @Override
    public void open() throws Exception {
        Gauge<Long> version = () -> globalVersion;
        getMetricGroup().gauge("global_version", version);
        super.open();
    }

    @Override
    public void processElement1(StreamRecord<Row> element) throws Exception {
        processElement(element);
    }

    @Override
    public void processElement2(StreamRecord<Row> element) throws Exception {
        Row row = element.getValue();
        long version = (Long) row.getField(0);
        if (version <= globalVersion) {
            return;
        }
        flush();
        byte[] model = (byte[]) row.getField(1);
        versions.clear();
        versions.put(version, model);
        globalVersion = version;
        globalModel = model;
    }

    @Override
    public void endInput() {
        if (++inputsEnded == 2) {
            super.endInput();
        }
    }

    @Override
    protected long currentGlobalVersion() {
        return globalVersion;
    }

    @Override
    protected byte[] currentGlobalModel() {
        return globalModel;
    }
}
