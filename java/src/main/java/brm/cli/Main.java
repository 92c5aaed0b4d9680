package brm.cli;

/** Entry point of the brm command line. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.out.println("brm");
    }
}
